"""Make the README's example figures from a fit on simulated data.

Usage::

    .venv/bin/python scripts/make_readme_figures.py [--out docs/images] [--draws 500] \\
        [--tune 1000] [--chains 4]

Simulates a benchmark table with known truth (``bayesproxy.datasets.simulate``), fits the
Bayesian proxy model, and writes the package's own figures as small PNGs:
``weights.png``, ``alignment_stability.png``, ``forecast_fan.png`` and ``rank.png``.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

from bayesproxy import ProxyForecaster, datasets, plots
from bayesproxy.errors import ConvergenceWarning

DPI = 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    sim = datasets.simulate(
        n_families=3,
        n_runs_per_family=1,
        n_checkpoints=6,
        n_proxies=6,
        n_replicates=2,
        holdout_share=0.3,
        random_seed=args.seed,
    )
    table = sim.table
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        forecaster = ProxyForecaster(target=table.target).fit(
            table,
            draws=args.draws,
            tune=args.tune,
            chains=args.chains,
            random_seed=args.seed,
            progressbar=False,
        )
    print(f"fit: {time.perf_counter() - start:.0f} s, converged={forecaster.converged}")
    for warning in caught:
        print(f"warning: {warning.message}")

    figures = {
        "weights.png": plots.plot_weights(forecaster, ci_prob=0.9).get_viz("figure"),
        "alignment_stability.png": plots.plot_alignment_stability(forecaster, ci_prob=0.9),
        "forecast_fan.png": plots.plot_forecast_fan(
            forecaster, table=table, x="flops", ci_prob=0.9, max_runs=3
        ),
        "rank.png": plots.plot_convergence(
            forecaster, kind="rank", var_names=["weight"], ci_prob=0.9
        ).get_viz("figure"),
    }
    for name, fig in figures.items():
        path = args.out / name
        fig.savefig(path, dpi=DPI)
        plt.close(fig)
        print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
