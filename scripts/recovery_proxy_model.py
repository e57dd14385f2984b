"""Parameter recovery of the proxy model on simulated tables with known truth.

Usage::

    .venv/bin/python scripts/recovery_proxy_model.py --seeds 10 --out models/recovery \\
        [--draws 1000] [--tune 1000] [--chains 4] [--first-seed 0] [--holdout-share 0.25] \\
        [--n-families 4] [--n-runs-per-family 3] [--n-checkpoints 5] [--n-proxies 8] \\
        [--n-replicates 2]

For each seed ``s`` (``first_seed`` ... ``first_seed + seeds - 1``) it simulates a table with
``bayesproxy.datasets.simulate(..., random_seed=s)`` (default: 60 units x 8 proxies x 2
replicates, the target hidden on the 25 % largest units), fits
``ProxyForecaster(target="target")`` with ``random_seed=s`` (one compiled sampler serves
every seed, the shapes being equal) and compares the posterior with the truth:

* rank correlation (Spearman) of the posterior means with the truth, per seed;
* coverage of the true value by the central 50 % and 90 % posterior intervals, for every
  quantity whose truth has the model's meaning *and* scale (see ``truth_on_model_scale``);
* the held-out units' true target score against ``forecast(prob=..., kind="true")``:
  coverage at 50 % and 90 % and the absolute error of the forecast mean;
* the convergence gate (largest R-hat, smallest bulk / tail ESS, divergences over the free
  parameters), and the same diagnostics over the quantities scored here.

The logit transform clips accuracies within 2 % of chance or of 1 (``ACCURACY_EPS``), which
bends the latent scale the truth is stated on; coverage is therefore also given over the
proxies with at most ``CLIP_LIMIT`` of their cells clipped.

Writes into ``--out``: ``recovery_seeds.csv`` (one row per seed), ``recovery_proxies.csv``
(one row per seed and proxy: truth, posterior mean and intervals), ``recovery_summary.json``
(settings, pooled figures, the code version) and ``recovery_summary.md`` (the Markdown
tables this script prints).
"""

from __future__ import annotations

import argparse
import inspect
import json
import subprocess
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy.stats import spearmanr

from bayesproxy import datasets
from bayesproxy.errors import ConvergenceWarning
from bayesproxy.model import ProxyForecaster
from bayesproxy.model.convergence import check_convergence
from bayesproxy.model.design import ACCURACY_EPS

PROBS = (0.5, 0.9)
#: Proxies with at most this share of cells clipped by the logit transform are "unclipped".
CLIP_LIMIT = 0.05
#: Posterior quantities this study reports (their R-hat / ESS are recorded besides the gate's).
REPORTED = ("alignment", "stability", "weight", "ceiling", "target_p")
_SAMPLE = ("chain", "draw")
#: Per-proxy quantities compared with the truth (all on the model's scale).
PROXY_QUANTITIES = (
    "alignment",
    "alignment_realised",
    "stability",
    "weight",
    "unique_sd",
    "noise_sd",
    "explained_sd",
)
#: Quantities whose rank correlation with the truth is reported per seed.
RANKED = ("alignment", "stability", "weight", "capability")
LABELS = {
    "alignment": "alignment (truth as simulated, Var θ = 1)",
    "alignment_realised": "alignment (truth on the realised capability scale)",
    "stability": "stability",
    "weight": "weight (truth on the standardised scale)",
    "unique_sd": "unique SD ψ (standardised scale)",
    "noise_sd": "replicate-noise SD σ (standardised scale)",
    "explained_sd": "explained SD λ·SD(θ) (standardised scale)",
    "ceiling": "target ceiling",
    "target_p": "target_p, units with an observed target",
    "held_out": 'held-out true score, `forecast(kind="true")`',
    "capability": "capability (posterior mean, rank only)",
}


def fit_defaults() -> dict[str, int]:
    """MCMC settings ``ProxyForecaster.fit`` uses when none are given."""
    params = inspect.signature(ProxyForecaster.fit).parameters
    return {name: int(params[name].default) for name in ("draws", "tune", "chains")}


def clipped_share(sim: datasets.SimulatedTable) -> pd.Series:
    """Share of each accuracy proxy's observed cells clipped by the logit transform."""
    ds = sim.table.dataset
    shares = {}
    for name in sim.truth.alignment["proxy"].values:
        task = ds.sel(task=name)
        score = np.asarray(task["score"].values, float)
        score = score[np.isfinite(score)]
        if str(task["kind"].values) != "accuracy" or score.size == 0:
            shares[str(name)] = 0.0
            continue
        chance = float(task["chance"].values)
        r = (score - chance) / (1.0 - chance)
        shares[str(name)] = float(np.mean((r < ACCURACY_EPS) | (r > 1.0 - ACCURACY_EPS)))
    return pd.Series(shares)


def truth_on_model_scale(
    sim: datasets.SimulatedTable, design: xr.Dataset
) -> dict[str, xr.DataArray]:
    """The truth of every quantity the posterior holds with the same meaning and scale.

    The model standardises each proxy on its transformed scale (divides by ``scale_k``,
    negates lower-is-better metrics) and fixes the capability's scale by convention, while
    the simulation states ``λ, ψ, σ`` on the unstandardised latent scale of the true
    capability. So: alignment and stability are scale-free and compared as they are (the
    simulated alignment assumes Var θ = 1; ``alignment_realised`` evaluates the model's
    definition, ``|λ| s_θ / √(λ² s_θ² + ψ²)`` with ``s_θ`` the SD of the table's true
    capabilities); ``ψ``, ``σ`` and ``λ·s_θ`` are divided by ``scale_k`` (and the latter
    signed); the weight is the simulated weight times ``sign_k · scale_k``, renormalised.
    ``ceiling`` and ``target_p`` are probabilities on both sides. Loadings, capabilities,
    the link's ``alpha`` / ``beta`` and the hierarchy's intercepts and slopes depend on
    the capability's scale and location, which the model fixes by a convention the
    simulation does not follow: they are not compared (the capability by rank only).
    """
    truth, p = sim.truth, sim.truth.params
    proxies = [str(v) for v in design["proxy"].values]
    sign = design["sign"].to_series().loc[proxies].to_numpy()
    scale = design["scale"].to_series().loc[proxies].to_numpy()
    reps = design["replicates"].to_series().loc[proxies].to_numpy()
    lam = truth.loading.sel(proxy=proxies).values[:, 0]
    psi = np.array([p["proxy_psi"][k] for k in proxies])
    sigma = np.array([p["proxy_sigma"][k] for k in proxies])
    s_theta = float(truth.capability.values[:, 0].std(ddof=1))
    raw_w = sign * lam / (psi**2 + sigma**2 / reps) * scale
    values = {
        "alignment": truth.alignment.sel(proxy=proxies).values,
        "alignment_realised": np.abs(lam) * s_theta / np.sqrt(lam**2 * s_theta**2 + psi**2),
        "stability": truth.stability.sel(proxy=proxies).values,
        "weight": raw_w / np.abs(raw_w).sum(),
        "unique_sd": psi / scale,
        "noise_sd": sigma / scale,
        "explained_sd": sign * lam * s_theta / scale,
    }
    out = {k: xr.DataArray(v, coords={"proxy": proxies}, dims="proxy") for k, v in values.items()}
    out["ceiling"] = xr.DataArray(float(p["target_ceiling"]))
    out["target_p"] = truth.target_p
    out["capability"] = truth.capability.isel(factor=0, drop=True)
    return out


def posterior_on_model_scale(fc: ProxyForecaster) -> dict[str, xr.DataArray]:
    """Posterior draws of the quantities :func:`truth_on_model_scale` returns."""
    post = fc.datatree["posterior"].to_dataset()
    theta = post["capability"].isel(factor=0, drop=True)
    out = {name: post[name] for name in ("alignment", "stability", "weight")}
    out["alignment_realised"] = post["alignment"]
    out["unique_sd"] = post["unique_sd"]
    out["noise_sd"] = post["noise_sd"]
    out["explained_sd"] = post["loading"].isel(factor=0, drop=True) * theta.std("unit", ddof=1)
    out["ceiling"] = post["ceiling"]
    out["target_p"] = post["target_p"]
    out["capability"] = theta
    return out


def interval_hits(draws: xr.DataArray, true: xr.DataArray, prob: float) -> np.ndarray:
    """Whether each true value lies in the central ``prob`` posterior interval."""
    lo, hi = (1 - prob) / 2, 1 - (1 - prob) / 2
    q = draws.quantile([lo, hi], dim=_SAMPLE)
    true = true.broadcast_like(q.isel(quantile=0, drop=True))
    inside = (true >= q.isel(quantile=0, drop=True)) & (true <= q.isel(quantile=1, drop=True))
    return np.atleast_1d(np.asarray(inside.values, bool))


def recover_one(seed: int, args: argparse.Namespace) -> tuple[dict[str, Any], pd.DataFrame]:
    """Simulate, fit and score one seed; return its row and its per-proxy rows."""
    sim = datasets.simulate(
        n_families=args.n_families,
        n_runs_per_family=args.n_runs_per_family,
        n_checkpoints=args.n_checkpoints,
        n_proxies=args.n_proxies,
        n_replicates=args.n_replicates,
        holdout_share=args.holdout_share,
        random_seed=seed,
    )
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # recorded below instead
        fc = ProxyForecaster(target="target").fit(
            sim.table, draws=args.draws, tune=args.tune, chains=args.chains, random_seed=seed
        )
    fit_s = time.perf_counter() - start
    design = fc.datatree["design"].to_dataset()
    truth = truth_on_model_scale(sim, design)
    post = posterior_on_model_scale(fc)
    has_target = design["has_target"].to_series()
    train = [str(u) for u in has_target.index[has_target.to_numpy(bool)]]
    truth["target_p"] = truth["target_p"].sel(unit=train)
    post["target_p"] = post["target_p"].sel(unit=train)

    row: dict[str, Any] = {"seed": seed}
    for name in RANKED:
        mean = post[name].mean(_SAMPLE)
        true = truth[name].sel({mean.dims[0]: mean[mean.dims[0]].values})
        row[f"{name}_spearman"] = float(spearmanr(mean.values, true.values).statistic)
    proxies = [str(v) for v in design["proxy"].values]
    frame = pd.DataFrame({"seed": seed, "proxy": proxies})
    frame["transform"] = design["transform"].values
    frame["clipped_share"] = clipped_share(sim).loc[proxies].to_numpy()
    for name in (*PROXY_QUANTITIES, "ceiling", "target_p"):
        hits = {prob: interval_hits(post[name], truth[name], prob) for prob in PROBS}
        for prob, inside in hits.items():
            row[f"{name}_in{round(prob * 100)}"] = int(inside.sum())
        row[f"{name}_n"] = int(hits[PROBS[0]].size)
        if name in PROXY_QUANTITIES:
            frame[f"{name}_true"] = truth[name].values
        if name in PROXY_QUANTITIES and name != "alignment_realised":  # same draws as alignment
            q = post[name].quantile([0.05, 0.95], dim=_SAMPLE).values
            frame[f"{name}_mean"] = post[name].mean(_SAMPLE).values
            frame[f"{name}_lower90"], frame[f"{name}_upper90"] = q[0], q[1]
        if name in PROXY_QUANTITIES:
            for prob, inside in hits.items():
                frame[f"{name}_in{round(prob * 100)}"] = inside
    row["ceiling_true"] = float(truth["ceiling"])
    row["ceiling_mean"] = float(post["ceiling"].mean())

    # held-out units: intervals of the true (expected) score, as a user would get them
    for prob in PROBS:
        f = fc.forecast(prob=prob, kind="true").set_index("unit")
        true = sim.truth.target_p.to_series().loc[f.index]
        row[f"held_out_in{round(prob * 100)}"] = int(
            ((true >= f["lower"]) & (true <= f["upper"])).sum()
        )
    row["held_out_n"] = len(f)
    row["held_out_mae"] = float(np.mean(np.abs(f["mean"] - true)))
    row["held_out_extrapolated"] = int(f["extrapolation"].sum())

    diag = fc.diagnostics()
    worst = diag["rhat"].idxmax()
    # the gate checks the free parameters; these are the quantities scored above
    reported = check_convergence(fc.datatree, var_names=list(REPORTED)).table
    row.update(
        max_rhat=float(diag["rhat"].max()),
        worst_rhat_variable=str(worst),
        min_ess_bulk=float(diag["ess_bulk"].min()),
        min_ess_tail=float(diag["ess_tail"].min()),
        reported_max_rhat=float(reported["rhat"].max()),
        reported_min_ess_bulk=float(reported["ess_bulk"].min()),
        reported_min_ess_tail=float(reported["ess_tail"].min()),
        divergences=int(diag.attrs["divergences"]),
        converged=bool(diag.attrs["ok"]),
        compiled_sampler_reused=bool(
            json.loads(fc.datatree.attrs["sampler"])["compiled_sampler_reused"]
        ),
        fit_s=round(fit_s, 1),
    )
    return row, frame


def pooled(seeds: pd.DataFrame, name: str, prob: float) -> tuple[int, int]:
    """Inside count and total over all seeds of one quantity at one interval."""
    total = "held_out_n" if name == "held_out" else f"{name}_n"
    return int(seeds[f"{name}_in{round(prob * 100)}"].sum()), int(seeds[total].sum())


def summarise(seeds: pd.DataFrame, proxies: pd.DataFrame) -> dict[str, Any]:
    """Pooled coverage, rank-correlation ranges and the convergence tally."""
    figures: dict[str, Any] = {}
    unclipped = proxies[proxies["clipped_share"] <= CLIP_LIMIT]
    for name in PROXY_QUANTITIES:
        for prob in PROBS:
            col = unclipped[f"{name}_in{round(prob * 100)}"]
            figures[f"{name}_coverage{round(prob * 100)}_unclipped"] = {
                "inside": int(col.sum()),
                "of": len(col),
                "share": round(float(col.mean()), 3),
            }
    for name in RANKED:
        col = seeds[f"{name}_spearman"]
        figures[f"{name}_spearman"] = {
            "mean": round(float(col.mean()), 3),
            "min": round(float(col.min()), 3),
            "max": round(float(col.max()), 3),
        }
    for name in (*PROXY_QUANTITIES, "ceiling", "target_p", "held_out"):
        for prob in PROBS:
            k, n = pooled(seeds, name, prob)
            figures[f"{name}_coverage{round(prob * 100)}"] = {
                "inside": k,
                "of": n,
                "share": round(k / n, 3),
            }
    figures["held_out_mae"] = {
        "mean": round(float(seeds["held_out_mae"].mean()), 4),
        "min": round(float(seeds["held_out_mae"].min()), 4),
        "max": round(float(seeds["held_out_mae"].max()), 4),
    }
    figures["held_out_extrapolated"] = int(seeds["held_out_extrapolated"].sum())
    figures["ceiling_posterior_mean"] = round(float(seeds["ceiling_mean"].mean()), 3)
    figures["ceiling_true"] = float(seeds["ceiling_true"].iloc[0])
    figures["convergence"] = {
        "fits": len(seeds),
        "passed_gate": int(seeds["converged"].sum()),
        "max_rhat_range": [round(seeds["max_rhat"].min(), 3), round(seeds["max_rhat"].max(), 3)],
        "min_ess_bulk_range": [
            round(seeds["min_ess_bulk"].min(), 1),
            round(seeds["min_ess_bulk"].max(), 1),
        ],
        "reported_max_rhat_range": [
            round(seeds["reported_max_rhat"].min(), 3),
            round(seeds["reported_max_rhat"].max(), 3),
        ],
        "reported_min_ess_bulk_range": [
            round(seeds["reported_min_ess_bulk"].min(), 1),
            round(seeds["reported_min_ess_bulk"].max(), 1),
        ],
        "fits_with_divergences": int((seeds["divergences"] > 0).sum()),
        "divergences_total": int(seeds["divergences"].sum()),
        "worst_rhat_variables": seeds["worst_rhat_variable"].value_counts().to_dict(),
        "compilations": int((~seeds["compiled_sampler_reused"]).sum()),
    }
    return figures


def markdown(seeds: pd.DataFrame, figures: dict[str, Any]) -> str:
    """The recovery and convergence tables in GitHub Markdown."""

    def rng(name: str) -> str:
        f = figures[f"{name}_spearman"]
        return f"{f['mean']:.2f} [{f['min']:.2f}, {f['max']:.2f}]"

    def cov(name: str, prob: float, suffix: str = "") -> str:
        f = figures.get(f"{name}_coverage{round(prob * 100)}{suffix}")
        return "–" if f is None else f"{f['share']:.2f} ({f['inside']}/{f['of']})"

    limit = f"{CLIP_LIMIT:.0%}"
    lines = [
        "| quantity | Spearman with truth, mean [min, max] over seeds | 50% coverage "
        f"| 90% coverage | 50% / 90% coverage, proxies with ≤ {limit} of cells clipped |",
        "|---|---|---|---|---|",
    ]
    for name in (*PROXY_QUANTITIES, "ceiling", "target_p", "held_out", "capability"):
        spear = rng(name) if name in RANKED else "–"
        c50, c90 = cov(name, 0.5), cov(name, 0.9)
        u50, u90 = cov(name, 0.5, "_unclipped"), cov(name, 0.9, "_unclipped")
        unclipped = "–" if u50 == "–" else f"{u50} / {u90}"
        lines.append(f"| {LABELS[name]} | {spear} | {c50} | {c90} | {unclipped} |")
    mae = figures["held_out_mae"]
    lines += [
        "",
        f"Held-out true score: mean absolute error of the forecast mean {mae['mean']:.3f} "
        f"(per seed {mae['min']:.3f}-{mae['max']:.3f}); posterior mean ceiling "
        f"{figures['ceiling_posterior_mean']:.3f} on average (truth "
        f"{figures['ceiling_true']:g}).",
        "",
        "| seed | alignment ρ | stability ρ | held-out in 90% | held-out MAE | max R-hat "
        "| min ESS bulk | divergences | gate | max R-hat / min ESS bulk, reported quantities |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in seeds.itertuples(index=False):
        lines.append(
            f"| {r.seed} | {r.alignment_spearman:.2f} | {r.stability_spearman:.2f} "
            f"| {r.held_out_in90}/{r.held_out_n} | {r.held_out_mae:.3f} | {r.max_rhat:.3f} "
            f"| {r.min_ess_bulk:.0f} | {r.divergences} | {'pass' if r.converged else 'fail'} "
            f"| {r.reported_max_rhat:.3f} / {r.reported_min_ess_bulk:.0f} |"
        )
    return "\n".join(lines) + "\n"


def code_version() -> dict[str, Any]:
    """The commit this run measured and whether the model code differed from it."""
    root = Path(__file__).resolve().parents[1]

    def git(*cmd: str) -> str:
        run = subprocess.run(["git", *cmd], cwd=root, capture_output=True, text=True)
        return run.stdout.strip()

    return {
        "git_commit": git("rev-parse", "HEAD"),
        "model_files_modified": git(
            "status", "--porcelain", "--", "bayesproxy/model", "bayesproxy/datasets.py"
        ).splitlines(),
    }


def main() -> None:
    defaults = fit_defaults()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=10, help="number of simulated tables")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--draws", type=int, default=defaults["draws"])
    parser.add_argument("--tune", type=int, default=defaults["tune"])
    parser.add_argument("--chains", type=int, default=defaults["chains"])
    parser.add_argument("--out", type=Path, default=Path("models/recovery"))
    parser.add_argument("--holdout-share", type=float, default=0.25)
    parser.add_argument("--n-families", type=int, default=4)
    parser.add_argument("--n-runs-per-family", type=int, default=3)
    parser.add_argument("--n-checkpoints", type=int, default=5)
    parser.add_argument("--n-proxies", type=int, default=8)
    parser.add_argument("--n-replicates", type=int, default=2)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    version = code_version()  # the code this run measures, read before it starts
    start = time.perf_counter()
    rows, frames = [], []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        row, frame = recover_one(seed, args)
        rows.append(row)
        frames.append(frame)
        print(
            f"seed {seed}: alignment ρ {row['alignment_spearman']:.2f}, stability ρ "
            f"{row['stability_spearman']:.2f}, held-out {row['held_out_in90']}/"
            f"{row['held_out_n']} in 90%, R-hat {row['max_rhat']:.3f}, "
            f"divergences {row['divergences']}, {row['fit_s']:.0f} s",
            flush=True,
        )
    elapsed = time.perf_counter() - start

    seeds = pd.DataFrame(rows)
    proxies = pd.concat(frames, ignore_index=True)
    seeds.to_csv(args.out / "recovery_seeds.csv", index=False, float_format="%.4g")
    proxies.to_csv(args.out / "recovery_proxies.csv", index=False, float_format="%.4g")
    figures = summarise(seeds, proxies)
    table = markdown(seeds, figures)
    settings = {
        "seeds": list(range(args.first_seed, args.first_seed + args.seeds)),
        "simulate": {
            "n_families": args.n_families,
            "n_runs_per_family": args.n_runs_per_family,
            "n_checkpoints": args.n_checkpoints,
            "n_proxies": args.n_proxies,
            "n_replicates": args.n_replicates,
            "holdout_share": args.holdout_share,
        },
        "fit": {"draws": args.draws, "tune": args.tune, "chains": args.chains},
        "elapsed_s": round(elapsed, 1),
        **version,
    }
    summary = {"settings": settings, "figures": figures}
    (args.out / "recovery_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (args.out / "recovery_summary.md").write_text(table)
    print()
    print(table)
    print(f"{len(seeds)} fits in {elapsed / 60:.1f} min; wrote {args.out}/recovery_*")


if __name__ == "__main__":
    main()
