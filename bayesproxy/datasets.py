"""Synthetic benchmark tables with known ground truth, and the embedded default table.

:func:`simulate` draws a table from the generating process of the default model
(``docs``/DESIGN section 3): model families with their own intercept and slope over log
compute, runs of several sizes evaluated at several checkpoints and retrained with other
seeds (replicates), proxy tasks of varying *alignment* (how much of a task's true score the
shared capability explains) and *stability* (how little it moves across replicates), some
accuracy tasks with chance floors and some loss-like metrics, and an emergent target that
sits at its chance level for small or early units and rises along a sigmoid. Scores of
accuracy tasks are Binomial draws over ``n_items`` questions, so sampling noise is real.

Examples
--------
>>> from bayesproxy.datasets import simulate
>>> sim = simulate(n_families=3, random_seed=1)
>>> sim.table.target
'target'
>>> float(sim.truth.alignment.max()) <= 1.0
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import expit

from bayesproxy.errors import BayesproxyError
from bayesproxy.table import BenchmarkTable, make_dataset

__all__ = ["SimulatedTable", "SimulationTruth", "load_example", "simulate"]

_FAMILY_NAMES = ("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta")
_PROXY_CHANCES = (0.25, 0.0, 0.5, 0.25, 0.2, 0.0)
_TOKENS_PER_STEP = 2**21  # ~2M tokens per optimizer step, a common pretraining batch


@dataclass(frozen=True)
class SimulationTruth:
    """The ground truth behind a simulated table.

    Attributes
    ----------
    alignment : xarray.DataArray
        Dim ``proxy``: |λ_k| / sqrt(|λ_k|² + ψ_k²), the share of a proxy's true-score
        spread the latent capability explains (on the latent scale).
    stability : xarray.DataArray
        Dim ``proxy``: 1 − σ_k² / Var(z_k), the share of a proxy's observed variance across
        units and replicates that is not replicate noise.
    weight : xarray.DataArray
        Dim ``proxy``: λ_k / (ψ_k² + σ_k²/J) normalised to sum 1 in absolute value, the
        weight an ideal estimator gives each proxy when inferring capability.
    loading : xarray.DataArray
        Dims ``(proxy, factor)``: λ on the latent (transformed) scale.
    capability : xarray.DataArray
        Dims ``(unit, factor)``: θ of each unit.
    target_p : xarray.DataArray
        Dim ``unit``: the target's expected score (chance floor included).
    params : dict
        The generating parameters (arguments of :func:`simulate` and per-family,
        per-proxy draws).
    """

    alignment: xr.DataArray
    stability: xr.DataArray
    weight: xr.DataArray
    loading: xr.DataArray
    capability: xr.DataArray
    target_p: xr.DataArray
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SimulatedTable:
    """A simulated :class:`~bayesproxy.table.BenchmarkTable` and its ground truth."""

    table: BenchmarkTable
    truth: SimulationTruth


def simulate(
    *,
    n_families: int = 4,
    n_runs_per_family: int = 3,
    n_checkpoints: int = 5,
    n_proxies: int = 8,
    n_replicates: int = 2,
    n_factors: int = 1,
    target_chance: float = 0.25,
    target_ceiling: float = 0.95,
    emergence: float = 0.6,
    sharpness: float = 3.0,
    target_n_items: int = 400,
    metric_share: float = 0.25,
    missing: float = 0.0,
    holdout_share: float = 0.0,
    random_seed: int = 0,
) -> SimulatedTable:
    """Simulate a benchmark table with known alignment, stability and capability.

    Parameters
    ----------
    n_families : int, default 4
        Model families; each has its own intercept and slope of capability over log compute.
    n_runs_per_family : int, default 3
        Training runs (model sizes) per family; sizes grow by about 3x per run.
    n_checkpoints : int, default 5
        Evaluated checkpoints per run, spaced geometrically up to the final step.
    n_proxies : int, default 8
        Proxy tasks; their alignment spans 0.15-0.95 and their stability 0.3-0.97.
    n_replicates : int, default 2
        Retrainings of every run with another seed.
    n_factors : int, default 1
        Latent capability dimensions; the target depends on the first one.
    target_chance : float, default 0.25
        The target's chance floor.
    target_ceiling : float, default 0.95
        The target's best attainable score.
    emergence : float, default 0.6
        Quantile of the units' capability at which the target is halfway up its sigmoid:
        higher means the target emerges later (more units at chance).
    sharpness : float, default 3.0
        Slope of the emergence sigmoid per unit of capability.
    target_n_items : int, default 400
        Questions in the target task (Binomial sampling noise).
    metric_share : float, default 0.25
        Share of proxies that are loss-like metrics (``higher_is_better=False``).
    missing : float, default 0.0
        Share of proxy cells (unit, task, replicate) left unevaluated (NaN).
    holdout_share : float, default 0.0
        Share of units, the largest in compute, whose target is hidden in the table (the
        truth keeps their ``target_p``): the units a forecaster should predict.
    random_seed : int, default 0
        Seed; the same seed gives the same table.

    Returns
    -------
    SimulatedTable
        ``.table`` (target ``"target"``, proxies ``proxy_0`` ...) and ``.truth``.

    Raises
    ------
    BayesproxyError
        An argument outside its range.

    Examples
    --------
    >>> sim = simulate(n_families=2, n_runs_per_family=2, n_checkpoints=3, random_seed=4)
    >>> sim.table.n_units, sim.table.n_replicates
    (12, 2)
    >>> sim.truth.alignment.dims
    ('proxy',)
    """
    _check_args(
        n_families=n_families,
        n_runs_per_family=n_runs_per_family,
        n_checkpoints=n_checkpoints,
        n_proxies=n_proxies,
        n_replicates=n_replicates,
        n_factors=n_factors,
        target_chance=target_chance,
        target_ceiling=target_ceiling,
        emergence=emergence,
        target_n_items=target_n_items,
        metric_share=metric_share,
        missing=missing,
        holdout_share=holdout_share,
    )
    rng = np.random.default_rng(random_seed)
    n_runs = n_families * n_runs_per_family
    n_units = n_runs * n_checkpoints
    n_rep = n_replicates

    # --- units: families x sizes x checkpoints, with Chinchilla-like token budgets
    fam_of_run = np.repeat(np.arange(n_families), n_runs_per_family)
    size_idx = np.tile(np.arange(n_runs_per_family), n_families)
    fam_base = 10 ** rng.uniform(7.7, 8.3, n_families)  # smallest model: ~50M-200M params
    params_run = np.round(fam_base[fam_of_run] * 3.0**size_idx, -6)
    tokens_per_param = rng.uniform(10, 40, n_families)[fam_of_run]
    final_steps = np.ceil(params_run * tokens_per_param / _TOKENS_PER_STEP / 100) * 100
    fractions = np.geomspace(0.05, 1.0, n_checkpoints)
    steps = np.maximum(np.round(final_steps[:, None] * fractions[None, :], -1), 10.0)
    run_of_unit = np.repeat(np.arange(n_runs), n_checkpoints)
    step = steps.ravel()
    params = params_run[run_of_unit]
    tokens = step * _TOKENS_PER_STEP
    flops = 6.0 * params * tokens
    log_c = np.log10(flops)
    x = (log_c - log_c.mean()) / log_c.std()

    # --- capability: family intercept + slope over log compute + run and unit deviations
    fam_a = rng.normal(0.0, 0.5, n_families)
    fam_b = np.abs(rng.normal(1.0, 0.15, n_families))
    run_dev = rng.normal(0.0, 0.25, n_runs)
    theta = np.empty((n_units, n_factors))
    fam_of_unit = fam_of_run[run_of_unit]
    theta[:, 0] = (
        fam_a[fam_of_unit]
        + fam_b[fam_of_unit] * x
        + run_dev[run_of_unit]
        + rng.normal(0.0, 0.05, n_units)
    )
    if n_factors > 1:  # further skills: per-run traits that also grow mildly with compute
        extra = rng.normal(0.0, 1.0, (n_runs, n_factors - 1))[run_of_unit]
        theta[:, 1:] = extra + 0.3 * x[:, None]

    # --- proxies: alignment and stability set on a grid, shuffled independently
    k = n_proxies
    align = rng.permutation(np.linspace(0.15, 0.95, k))
    stab = rng.permutation(np.linspace(0.3, 0.97, k))
    n_metric = round(metric_share * k)
    is_metric = np.zeros(k, dtype=bool)
    is_metric[rng.choice(k, n_metric, replace=False)] = True
    scale = np.where(is_metric, 0.1, 1.0)  # log-loss moves less than logit-accuracy
    direction = np.where(is_metric, -1.0, 1.0)  # loss falls as capability grows
    lam = np.zeros((k, n_factors))
    lam[:, 0] = direction * scale * rng.uniform(0.8, 1.4, k)
    if n_factors > 1:
        lam[:, 1:] = direction[:, None] * scale[:, None] * rng.uniform(0.0, 0.6, (k, n_factors - 1))
    lam_norm = np.linalg.norm(lam, axis=1)
    psi = lam_norm * np.sqrt(1.0 / align**2 - 1.0)
    true_var = (lam @ np.cov(theta.T, ddof=0).reshape(n_factors, n_factors) * lam).sum(1)
    true_var = true_var + psi**2
    sigma = np.sqrt(true_var * (1.0 - stab) / stab)
    mu = np.where(is_metric, np.log(rng.uniform(2.5, 4.0, k)), rng.normal(-0.3, 0.5, k))
    chance = np.where(is_metric, 0.0, np.asarray(_PROXY_CHANCES)[np.arange(k) % 6])
    n_items = np.where(is_metric, np.nan, rng.integers(800, 3000, k).astype(float))

    zeta = mu[None, :] + theta @ lam.T + psi[None, :] * rng.standard_normal((n_units, k))
    z = zeta[:, :, None] + sigma[None, :, None] * rng.standard_normal((n_units, k, n_rep))
    p_proxy = chance[None, :, None] + (1.0 - chance[None, :, None]) * expit(z)
    items = np.where(np.isnan(n_items), 1, n_items).astype(np.int64)
    hits = rng.binomial(np.broadcast_to(items[None, :, None], z.shape), np.clip(p_proxy, 0, 1))
    proxy_score = np.where(is_metric[None, :, None], np.exp(z), hits / items[None, :, None])
    proxy_stderr = np.where(
        is_metric[None, :, None],
        np.nan,
        np.sqrt(np.clip(proxy_score * (1 - proxy_score), 0, None) / items[None, :, None]),
    )
    if missing > 0:
        hole = rng.random(proxy_score.shape) < missing
        proxy_score = np.where(hole, np.nan, proxy_score)
        proxy_stderr = np.where(hole, np.nan, proxy_stderr)

    # --- emergent target: chance floor, sigmoid in the first capability, Binomial items
    alpha = -sharpness * np.quantile(theta[:, 0], emergence)
    target_p = target_chance + (target_ceiling - target_chance) * expit(
        alpha + sharpness * theta[:, 0]
    )
    t_hits = rng.binomial(target_n_items, np.broadcast_to(target_p[:, None], (n_units, n_rep)))
    t_score = t_hits / target_n_items
    t_stderr = np.sqrt(t_score * (1 - t_score) / target_n_items)
    if holdout_share > 0:
        n_hold = round(holdout_share * n_units)
        hidden = np.argsort(log_c)[n_units - n_hold :]
        t_score[hidden] = np.nan
        t_stderr[hidden] = np.nan

    # --- assemble, units sorted by (run, step) like every reader does
    width = len(str(k - 1))
    proxy_names = [f"proxy_{j:0{width}d}" for j in range(k)]
    fam_names = [_family_name(f) for f in range(n_families)]
    run_names = np.array(
        [f"{fam_names[f]}-{_size_label(p)}" for f, p in zip(fam_of_run, params_run, strict=True)]
    )
    model = run_names[run_of_unit]
    order = np.lexsort((step, model))
    labels = [f"{m}@{s:.0f}" for m, s in zip(model[order], step[order], strict=True)]
    units = pd.DataFrame(
        {
            "model": model[order],
            "run": model[order],
            "step": step[order],
            "family": np.asarray(fam_names)[fam_of_unit][order],
            "params": params[order],
            "tokens": tokens[order],
            "flops": flops[order],
        },
        index=labels,
    )
    tasks = pd.DataFrame(
        {
            "chance": [*chance, target_chance],
            "kind": [*np.where(is_metric, "metric", "accuracy"), "accuracy"],
            "higher_is_better": [*~is_metric, True],
        },
        index=[*proxy_names, "target"],
    )
    score = np.concatenate([proxy_score, t_score[:, None, :]], axis=1)[order]
    stderr = np.concatenate([proxy_stderr, t_stderr[:, None, :]], axis=1)[order]
    n_items_all = np.concatenate([n_items, [float(target_n_items)]])
    n_items_cube = np.where(
        np.isnan(score), np.nan, np.broadcast_to(n_items_all[None, :, None], score.shape)
    )
    ds = make_dataset(
        score=score,
        stderr=stderr,
        n_items=n_items_cube,
        units=units,
        tasks=tasks,
        replicates=[str(r) for r in range(n_rep)],
        target="target",
    )
    table = BenchmarkTable(ds)

    weight = lam[:, 0] / (psi**2 + sigma**2 / n_rep)
    factors = np.arange(n_factors)
    truth = SimulationTruth(
        alignment=xr.DataArray(align, coords={"proxy": proxy_names}, dims="proxy"),
        stability=xr.DataArray(stab, coords={"proxy": proxy_names}, dims="proxy"),
        weight=xr.DataArray(
            weight / np.abs(weight).sum(), coords={"proxy": proxy_names}, dims="proxy"
        ),
        loading=xr.DataArray(
            lam, coords={"proxy": proxy_names, "factor": factors}, dims=("proxy", "factor")
        ),
        capability=xr.DataArray(
            theta[order], coords={"unit": labels, "factor": factors}, dims=("unit", "factor")
        ),
        target_p=xr.DataArray(target_p[order], coords={"unit": labels}, dims="unit"),
        params={
            "n_families": n_families,
            "n_runs_per_family": n_runs_per_family,
            "n_checkpoints": n_checkpoints,
            "n_proxies": n_proxies,
            "n_replicates": n_replicates,
            "n_factors": n_factors,
            "target_chance": target_chance,
            "target_ceiling": target_ceiling,
            "emergence": emergence,
            "sharpness": sharpness,
            "target_n_items": target_n_items,
            "metric_share": metric_share,
            "missing": missing,
            "holdout_share": holdout_share,
            "random_seed": random_seed,
            "family_intercept": dict(zip(fam_names, fam_a.tolist(), strict=True)),
            "family_slope": dict(zip(fam_names, fam_b.tolist(), strict=True)),
            "target_alpha": float(alpha),
            "proxy_mu": dict(zip(proxy_names, mu.tolist(), strict=True)),
            "proxy_psi": dict(zip(proxy_names, psi.tolist(), strict=True)),
            "proxy_sigma": dict(zip(proxy_names, sigma.tolist(), strict=True)),
            "proxy_is_metric": dict(zip(proxy_names, is_metric.tolist(), strict=True)),
            "log10_flops_mean": float(log_c.mean()),
            "log10_flops_sd": float(log_c.std()),
        },
    )
    return SimulatedTable(table=table, truth=truth)


def load_example() -> SimulatedTable:
    """Return the embedded default table: a fixed :func:`simulate` call.

    Five families of three sizes, six checkpoints each (90 units), eight proxies, two
    replicates, an emergent 4-way-choice target hidden on the 20 % largest units (the ones
    to forecast), and a few missing proxy evaluations.

    Returns
    -------
    SimulatedTable

    Examples
    --------
    >>> example = load_example()
    >>> example.table.n_units
    90
    >>> int((~example.table.target_observed).sum())
    18
    """
    return simulate(
        n_families=5,
        n_runs_per_family=3,
        n_checkpoints=6,
        n_proxies=8,
        n_replicates=2,
        missing=0.03,
        holdout_share=0.2,
        random_seed=20240601,
    )


def _family_name(index: int) -> str:
    base = _FAMILY_NAMES[index % len(_FAMILY_NAMES)]
    return base if index < len(_FAMILY_NAMES) else f"{base}{index // len(_FAMILY_NAMES) + 1}"


def _size_label(params: float) -> str:
    if params >= 1e9:
        return f"{params / 1e9:.1f}B"
    return f"{params / 1e6:.0f}M"


def _check_args(**kw: Any) -> None:
    problems = []
    for name in ("n_families", "n_runs_per_family", "n_checkpoints", "n_proxies"):
        if int(kw[name]) < 1:
            problems.append(f"{name}={kw[name]} must be at least 1")
    if kw["n_families"] * kw["n_runs_per_family"] * kw["n_checkpoints"] < 3:
        problems.append("the table needs at least 3 units (families x runs x checkpoints)")
    if int(kw["n_replicates"]) < 1:
        problems.append(f"n_replicates={kw['n_replicates']} must be at least 1")
    if int(kw["n_factors"]) < 1:
        problems.append(f"n_factors={kw['n_factors']} must be at least 1")
    if int(kw["target_n_items"]) < 1:
        problems.append(f"target_n_items={kw['target_n_items']} must be at least 1")
    if not 0.0 <= kw["target_chance"] < kw["target_ceiling"] <= 1.0:
        problems.append("need 0 <= target_chance < target_ceiling <= 1")
    for name in ("emergence", "metric_share"):
        if not 0.0 <= kw[name] <= 1.0:
            problems.append(f"{name}={kw[name]} must lie in [0, 1]")
    for name in ("missing", "holdout_share"):
        if not 0.0 <= kw[name] < 0.9:
            problems.append(f"{name}={kw[name]} must lie in [0, 0.9)")
    if problems:
        raise BayesproxyError(
            "cannot simulate: " + "; ".join(problems) + ".\nHint: see simulate()'s docstring."
        )
