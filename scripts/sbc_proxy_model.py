"""Simulation-based calibration of the proxy model: ECDF-PIT figure and per-variable verdict.

Usage::

    .venv/bin/python scripts/sbc_proxy_model.py --simulations 200 --out models/sbc \\
        [--figure models/figures/sbc_ecdf_pit.png] [--draws 1000] [--tune 1000] \\
        [--chains 2] [--thin 10] [--seed 0]
    .venv/bin/python scripts/sbc_proxy_model.py --out models/sbc --replot  # figure only

Draws parameters from the prior, simulates a small table from each draw with the full
generative model (template: ``bayesproxy.model.calibration.DEFAULT_TABLE``), fits the model
to it with one compiled nutpie sampler, and ranks every true value among its posterior
draws (``bayesproxy.model.calibration.run_sbc``). Writes into ``--out``:
``sbc_verdict.csv`` / ``sbc_verdict.md`` (one row per variable), ``sbc_elements.csv`` (one
row per element), ``sbc_fits.csv`` (per simulation: compiled sampler reused, divergences,
smallest bulk ESS, largest R-hat, shares of ranks at 0 or L), ``sbc_ranks.nc`` (simuk's
ranks), ``sbc_reference.nc`` (the true values), ``sbc_settings.json`` and, as a diagnostic
only, ``sbc_verdict_without_missed.md`` (the verdict without the simulations whose
posterior missed at least half the capability's true values); the ECDF-PIT figure goes to
``--figure``. Prints the verdict.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import xarray as xr

from bayesproxy.model.calibration import SBCResult, pit_values, plot_sbc, run_sbc, sbc_verdict


def markdown_table(df: pd.DataFrame) -> str:
    """Render a data frame as a GitHub Markdown table (floats to 3 significant digits)."""

    def cell(value: object) -> str:
        if isinstance(value, bool):
            return "pass" if value else "**FAIL**"
        if isinstance(value, float):
            return f"{value:.3g}"
        return str(value)

    lines = [
        "| " + " | ".join(df.columns) + " |",
        "|" + "|".join("---" for _ in df.columns) + "|",
    ]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(cell(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def compressed(ds: xr.Dataset | xr.DataTree, group: str = "/prior_sbc") -> dict:
    """Zlib encoding for every data variable (ranks and draws compress well)."""
    names = ds.data_vars if isinstance(ds, xr.Dataset) else ds.to_dataset().data_vars
    spec = {name: {"zlib": True, "complevel": 4} for name in names}
    return spec if group == "/" else {group: spec}


def fits_missed(fits: pd.DataFrame) -> np.ndarray:
    """Simulations with at least half the capability's ranks at 0 or L (about 1 in 10^16
    for 24 units when calibrated): the posterior missed the truth wholesale."""
    return fits["capability_extreme_share"].to_numpy() >= 0.5


def model_version() -> dict[str, object]:
    """Commit and content hashes of the model code this run calibrated."""
    root = Path(__file__).resolve().parents[1]
    files = ["bayesproxy/model/build.py", "bayesproxy/model/derived.py"]

    def git(*cmd: str) -> str:
        run = subprocess.run(["git", *cmd], cwd=root, capture_output=True, text=True)
        return run.stdout.strip()

    return {
        "git_commit": git("rev-parse", "HEAD"),
        "model_files_modified": git("status", "--porcelain", "--", *files).splitlines(),
        "model_files_sha256": {
            name: hashlib.sha256((root / name).read_bytes()).hexdigest()[:16] for name in files
        },
    }


def save_figure(fig, path: Path, *, dpi: int) -> None:
    """Save as an 8-bit grayscale PNG (the figure is drawn in black and grays)."""
    from PIL import Image

    fig.savefig(path, dpi=dpi)
    Image.open(path).convert("L").save(path, optimize=True)


def replot(args: argparse.Namespace) -> None:
    """Rebuild the PIT values, verdict and figure from a finished run's files."""
    settings = json.loads((args.out / "sbc_settings.json").read_text())
    ranks = xr.open_datatree(args.out / "sbc_ranks.nc")
    reference = xr.open_dataset(args.out / "sbc_reference.nc")
    pit = pit_values(ranks, reference, n_rank_draws=settings["rank_draws"])
    verdict, elements = sbc_verdict(pit, alpha=settings["alpha"])
    fits = pd.read_csv(args.out / "sbc_fits.csv")
    result = SBCResult(None, pit, verdict, elements, fits, settings)
    save_figure(plot_sbc(result), args.figure, dpi=args.dpi)
    print(verdict.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    print(f"redrew {args.figure} from {args.out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--simulations", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path("models/sbc"))
    parser.add_argument("--figure", type=Path, default=Path("models/figures/sbc_ecdf_pit.png"))
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--thin", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--dpi", type=int, default=80)
    parser.add_argument(
        "--replot",
        action="store_true",
        help="redraw the figure and verdict from the files already in --out (no fits)",
    )
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    args.figure.parent.mkdir(parents=True, exist_ok=True)
    if args.replot:
        replot(args)
        return

    version = model_version()  # the code this run calibrates, read before it starts
    start = time.perf_counter()
    result = run_sbc(
        num_simulations=args.simulations,
        draws=args.draws,
        tune=args.tune,
        chains=args.chains,
        thin=args.thin,
        seed=args.seed,
        alpha=args.alpha,
        progress_bar=not args.no_progress,
        allow_partial=True,
    )
    elapsed = time.perf_counter() - start

    result.verdict.to_csv(args.out / "sbc_verdict.csv", index=False)
    result.elements.to_csv(args.out / "sbc_elements.csv", index=False)
    result.fits.to_csv(args.out / "sbc_fits.csv", index=False)
    (args.out / "sbc_verdict.md").write_text(markdown_table(result.verdict))
    ranks = result.sbc.simulations
    ranks.to_netcdf(args.out / "sbc_ranks.nc", encoding=compressed(ranks["prior_sbc"]))
    ref = result.sbc.ref_params  # in simulation order; "sample" labels the prior draw
    reference = ref.rename(sample="simulation").assign_coords(
        simulation=np.arange(ref.sizes["sample"]), prior_draw=("simulation", ref["sample"].values)
    )
    reference.to_netcdf(args.out / "sbc_reference.nc", encoding=compressed(reference, "/"))
    # Diagnostic, not a calibration verdict (it conditions on the outcome): the verdict
    # without the simulations whose posterior missed the whole capability vector.
    missed = fits_missed(result.fits)
    rest = result.pit["prior_sbc"].to_dataset().isel(draw=~missed)
    without, _ = sbc_verdict(xr.DataTree.from_dict({"prior_sbc": rest}), alpha=args.alpha)
    (args.out / "sbc_verdict_without_missed.md").write_text(markdown_table(without))
    fits = result.fits
    summary = {
        **result.settings,
        "elapsed_s": round(elapsed, 1),
        "compilations": int((~fits["compiled_sampler_reused"]).sum()),
        "fits_with_divergences": int((fits["divergences"] > 0).sum()),
        "median_divergences": float(fits["divergences"].median()),
        "fits_with_max_rhat_over_1.01": int((fits["max_rhat"] > 1.01).sum()),
        "median_min_ess_bulk": float(fits["min_ess_bulk"].median()),
        "fits_missing_half_the_capability": int(missed.sum()),
        "missed_simulations": [int(i) for i in np.nonzero(missed)[0]],
        "failed_without_missed": without.loc[~without["passed"], "variable"].tolist(),
        "passed": result.passed,
        **version,
    }
    (args.out / "sbc_settings.json").write_text(json.dumps(summary, indent=2) + "\n")
    save_figure(plot_sbc(result), args.figure, dpi=args.dpi)

    pd.set_option("display.width", 200)
    print(result.verdict.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    print(json.dumps(summary, indent=2))
    failed = result.verdict.loc[~result.verdict["passed"], "variable"].tolist()
    if result.settings["num_simulations"] < args.simulations:
        print(
            f"WARNING: only {result.settings['num_simulations']} of {args.simulations} "
            "simulations finished (see the error above)."
        )
    print(
        "VERDICT: "
        + (
            "no variable failed"
            if not failed
            else f"{len(failed)} variable(s) failed: {', '.join(failed)}"
        )
        + f" (pot_c per element, Bonferroni within a variable, Holm over variables, "
        f"alpha = {args.alpha}); {elapsed / 60:.1f} min"
    )
    print(
        f"diagnostic: {int(missed.sum())} simulation(s) missed at least half the capability; "
        "without them failed: " + (", ".join(summary["failed_without_missed"]) or "none")
    )
    print(f"wrote {args.out}/sbc_*.csv|md|nc|json and {args.figure}")


if __name__ == "__main__":
    main()
