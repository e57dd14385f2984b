"""Forecast fan chart: the target's predictive bands against log compute or step, per run."""

from __future__ import annotations

import contextlib
import inspect
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr

from bayesproxy.plots._common import GRAYS, PlotInputError, check_prob, require_group

__all__ = ["fan_data", "plot_forecast_fan"]

_TABLE_ATTRIBUTES: tuple[str, ...] = ("table", "table_", "train_table", "fitted_table")
_CEILING_VARS: tuple[str, ...] = ("target_ceiling", "ceiling", "u_T")
_CHANCE_VARS: tuple[str, ...] = ("target_chance", "chance")


@dataclass(frozen=True)
class _FanInputs:
    samples: xr.DataArray  # dims (unit, sample)
    units: pd.DataFrame  # index unit; columns run, x, observed, extrapolation
    chance: float
    ceiling: float
    target: str


def _fitted_table(forecaster: Any) -> Any:
    for name in _TABLE_ATTRIBUTES:
        table = getattr(forecaster, name, None)
        if table is not None and hasattr(table, "dataset"):
            return table
    raise PlotInputError(
        f"cannot find the table {type(forecaster).__name__} was fitted on.\n"
        "Hint: pass table=... (a BenchmarkTable with the units to draw)."
    )


def _x_values(coords: xr.Dataset | pd.DataFrame, x: str, n: int) -> tuple[np.ndarray, str]:
    if x not in ("flops", "step"):
        raise PlotInputError(f"x={x!r} is not supported.\nHint: pass x='flops' or x='step'.")
    values = np.asarray(coords[x], dtype=float) if x in coords else np.full(n, np.nan)
    if x == "step":
        return values, "training step (optimizer steps)"
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(values > 0, np.log10(values), np.nan), "training compute (log10 FLOPs)"


def _posterior_scalar(dt: xr.DataTree | None, names: Sequence[str]) -> float | None:
    if dt is None or "posterior" not in dt.children:
        return None
    posterior = dt["posterior"]
    for name in names:
        if name in posterior.data_vars and posterior[name].ndim <= 2:
            return float(posterior[name].median())
    return None


def _chance_and_ceiling(dt: xr.DataTree | None) -> tuple[float | None, float]:
    """Target chance floor and ceiling of a fit: posterior, then design, then priors."""
    chance = _posterior_scalar(dt, _CHANCE_VARS)
    ceiling = _posterior_scalar(dt, _CEILING_VARS)
    if dt is not None:
        if chance is None and "design" in dt.children:
            chance = dt["design"].attrs.get("target_chance")
        if chance is None:
            chance = dt.attrs.get("target_chance")
        if ceiling is None and "priors" in dt.attrs:
            with contextlib.suppress(ValueError, TypeError):
                fixed = float(json.loads(dt.attrs["priors"]).get("ceiling", np.nan))
                ceiling = fixed if np.isfinite(fixed) else None
    return (None if chance is None else float(chance)), (1.0 if ceiling is None else ceiling)


def _unit_coords(dt: xr.DataTree, unit_labels: list[str], da: xr.DataArray) -> pd.DataFrame:
    """Run, step, log compute and extrapolation per unit, from the variable or the design."""
    n = len(unit_labels)
    design = dt["design"].to_dataset() if "design" in dt.children else None
    if design is not None and "unit" in design.dims:
        design = design.assign_coords(unit=[str(u) for u in design["unit"].values])
        design = design.reindex(unit=unit_labels)

    def column(name: str, default: Any) -> np.ndarray:
        if name in da["unit"].coords:
            return np.asarray(da["unit"].coords[name].values)
        if design is not None and name in design.variables and design[name].dims == ("unit",):
            return np.asarray(design[name].values)
        return np.full(n, default)

    flops = column("flops", np.nan).astype(float)
    if not np.isfinite(flops).any() and design is not None and "x" in design:
        # the design stores standardized log10 compute; undo the standardization
        x = np.asarray(design["x"].values, dtype=float)
        log10 = x * design.attrs.get("compute_scale", np.nan) + design.attrs.get(
            "compute_center", np.nan
        )
        flops = 10.0**log10
    return pd.DataFrame(
        {
            "run": [str(r) for r in column("run", "all units")],
            "step": column("step", np.nan).astype(float),
            "flops": flops,
            "extrapolation": column("extrapolation", False).astype(bool),
        },
        index=pd.Index(unit_labels, name="unit"),
    )


def _observed_target(dt: xr.DataTree, unit_labels: list[str]) -> np.ndarray:
    """Observed target fraction per unit (mean over replicates); NaN where unknown.

    The observed variable is matched to units by a unit-labelled dimension, or by a
    ``target_unit`` index in the design, or (one replicate per unit) by the design's
    ``has_target`` order. Counts (Binomial likelihood) are not fractions and are skipped.
    """
    observed = np.full(len(unit_labels), np.nan)
    if "observed_data" not in dt.children:
        return observed
    obs_ds = dt["observed_data"].to_dataset()
    name = "target_obs" if "target_obs" in obs_ds.data_vars else None
    if name is None or obs_ds[name].ndim != 1:
        return observed
    values = np.asarray(obs_ds[name].values, dtype=float)
    if values.size and (np.nanmin(values) < 0 or np.nanmax(values) > 1):
        return observed  # counts, not fractions
    dim = obs_ds[name].dims[0]
    labels = [str(v) for v in obs_ds[name][dim].values]
    index = pd.Index(unit_labels)
    if set(labels) <= set(unit_labels):
        positions = index.get_indexer(labels)
    elif "design" in dt.children and "target_unit" in dt["design"].data_vars:
        positions = np.asarray(dt["design"]["target_unit"].values, dtype=int)
    elif "design" in dt.children and "has_target" in dt["design"].data_vars:
        design = dt["design"].to_dataset()
        has = np.asarray(design["has_target"].values, dtype=bool)
        if has.sum() != values.size:
            return observed  # several replicates per unit: the order is ambiguous
        names = np.asarray([str(u) for u in design["unit"].values])[has]
        positions = index.get_indexer(names)
    else:
        return observed
    sums = pd.Series(values).groupby(positions).mean()
    keep = sums.index >= 0
    observed[sums.index[keep]] = sums.to_numpy()[keep]
    return observed


def _from_forecaster(forecaster: Any, table: Any, *, prob: float, n_samples: int, seed: int):
    from bayesproxy.plots._common import as_datatree

    try:
        dt = as_datatree(forecaster)
    except PlotInputError:  # a non-Bayesian forecaster: no posterior
        dt = None
    if table is None:
        with contextlib.suppress(PlotInputError):
            table = _fitted_table(forecaster)
    if table is None:
        if dt is None:
            _fitted_table(forecaster)  # raises, saying to pass table=
        return _fitted_units(forecaster, dt, prob=prob, n_samples=n_samples, seed=seed)
    target = getattr(forecaster, "target", None) or table.dataset.attrs.get("target", "")
    ds = table.dataset
    if target not in ds["task"].values:
        raise PlotInputError(
            f"the target {target!r} is not a task of the table.\n"
            "Hint: pass the table the forecaster was fitted on (it must list the target task)."
        )
    samples = _true_score_samples(forecaster, table, n_samples=n_samples, seed=seed)
    if samples is None:
        raise PlotInputError(
            f"the {getattr(forecaster, 'name', type(forecaster).__name__)!r} forecaster has no "
            "predictive uncertainty, so there is no fan to draw.\n"
            "Hint: plot a Bayesian fit (ProxyForecaster) or use its forecast() table instead."
        )
    frame = forecaster.forecast(table, prob=prob)
    extrapolation = frame.set_index("unit")["extrapolation"].astype(bool)
    observed = ds["score"].sel(task=target)
    if "replicate" in observed.dims:
        observed = observed.mean("replicate", skipna=True)
    units = pd.DataFrame(
        {
            "run": [str(r) for r in ds["run"].values],
            "step": np.asarray(ds["step"].values, dtype=float),
            "flops": np.asarray(ds["flops"].values, dtype=float),
            "observed": np.asarray(observed.values, dtype=float),
        },
        index=pd.Index([str(u) for u in ds["unit"].values], name="unit"),
    )
    units["extrapolation"] = extrapolation.reindex(units.index).fillna(False).astype(bool)
    chance = float(ds["chance"].sel(task=target)) if "chance" in ds.coords else None
    fit_chance, ceiling = _chance_and_ceiling(dt)
    chance = chance if chance is not None else (fit_chance or 0.0)
    samples = samples.assign_coords(unit=[str(u) for u in samples["unit"].values])
    return _FanInputs(samples, units, chance, ceiling, target)


def _true_score_samples(forecaster: Any, table: Any, *, n_samples: int, seed: int) -> Any:
    """Predictive draws of the units' true score where the forecaster tells it apart.

    The fan's bands are of the true (expected) score, like the fitted units' ``target_p``;
    observed scores scatter around them by their sampling noise.
    """
    method = forecaster.predictive_samples
    kwargs = {"kind": "true"} if "kind" in inspect.signature(method).parameters else {}
    return method(table, n_samples=n_samples, random_seed=seed, **kwargs)


def _fitted_units(forecaster: Any, dt: xr.DataTree, *, prob: float, n_samples: int, seed: int):
    """Fan the fitted units: posterior for observed ones, forecasts for the others."""
    inputs = _from_datatree(dt, var_name="target_p")
    rng = np.random.default_rng(seed)
    pick = rng.choice(
        inputs.samples.sizes["sample"],
        size=n_samples,
        replace=n_samples > inputs.samples.sizes["sample"],
    )
    samples = inputs.samples.isel(sample=pick).drop_vars("sample", errors="ignore")
    missing = _true_score_samples(forecaster, None, n_samples=n_samples, seed=seed)
    units = inputs.units.copy()
    if missing is not None and missing.sizes.get("unit", 0):
        labels = [str(u) for u in missing["unit"].values]
        values = samples.values.copy()
        values[units.index.get_indexer(labels)] = np.asarray(missing.values, dtype=float)
        samples = samples.copy(data=values)
        flags = forecaster.forecast(prob=prob).set_index("unit")["extrapolation"]
        flags.index = flags.index.astype(str)
        units.loc[flags.index, "extrapolation"] = flags.astype(bool).to_numpy()
    return _FanInputs(samples, units, inputs.chance, inputs.ceiling, inputs.target)


def _from_datatree(dt: xr.DataTree, *, var_name: str) -> _FanInputs:
    posterior = require_group(dt, "posterior", why="the forecast fan chart")
    if var_name not in posterior.data_vars or "unit" not in posterior[var_name].dims:
        raise PlotInputError(
            f"the posterior has no {var_name!r} variable with a 'unit' dimension.\n"
            "Hint: plot a bayesproxy fit (its posterior holds 'target_p' per unit), or pass "
            "var_name= naming the per-unit predicted target score."
        )
    da = posterior[var_name]
    samples = da.stack(sample=[d for d in ("chain", "draw") if d in da.dims]).transpose(
        "unit", "sample"
    )
    unit_labels = [str(u) for u in da["unit"].values]
    samples = samples.drop_vars([c for c in samples.coords if c not in ("unit",)]).assign_coords(
        unit=unit_labels
    )
    units = _unit_coords(dt, unit_labels, da)
    units["observed"] = _observed_target(dt, unit_labels)
    chance, ceiling = _chance_and_ceiling(dt)
    return _FanInputs(samples, units, chance or 0.0, ceiling, str(dt.attrs.get("target", "")))


def fan_data(
    forecaster: Any,
    *,
    table: Any = None,
    x: Literal["flops", "step"] = "flops",
    ci_prob: float = 0.9,
    n_samples: int = 1000,
    random_seed: int = 0,
    var_name: str = "target_p",
) -> pd.DataFrame:
    """Compute the numbers behind :func:`plot_forecast_fan`, one row per unit.

    Parameters
    ----------
    forecaster : forecaster or xarray.DataTree
        See :func:`plot_forecast_fan`.
    table, x, ci_prob, n_samples, random_seed, var_name
        See :func:`plot_forecast_fan`.

    Returns
    -------
    pandas.DataFrame
        Columns ``unit, run, x, observed, median, lower_50, upper_50, lower, upper,
        extrapolation`` (``lower``/``upper`` bound the central ``ci_prob`` interval), plus
        the chance floor and ceiling in ``attrs``.

    Examples
    --------
    >>> import numpy as np
    >>> from arviz_base import from_dict
    >>> rng = np.random.default_rng(0)
    >>> dt = from_dict(
    ...     {"posterior": {"target_p": rng.uniform(0.25, 0.9, (2, 40, 3))}},
    ...     dims={"target_p": ["unit"]},
    ...     coords={"unit": ["a", "b", "c"]},
    ... )
    >>> fan_data(dt, x="step")[["unit", "median"]].shape
    (3, 2)
    """
    prob = check_prob(ci_prob)
    if isinstance(forecaster, xr.DataTree):
        inputs = _from_datatree(forecaster, var_name=var_name)
    else:
        inputs = _from_forecaster(
            forecaster, table, prob=prob, n_samples=n_samples, seed=random_seed
        )
    units = inputs.units
    samples = inputs.samples.sel(unit=units.index.to_list()).values
    if not np.isfinite(samples).any():
        raise PlotInputError(
            "the predictive samples are all NaN.\nHint: check the fit converged and the table's "
            "units have proxy scores."
        )
    qs = np.nanquantile(samples, [(1 - prob) / 2, 0.25, 0.5, 0.75, (1 + prob) / 2], axis=1)
    xvals, xlabel = _x_values(units, x, len(units))
    out = pd.DataFrame(
        {
            "unit": units.index,
            "run": units["run"].to_numpy(),
            "x": xvals,
            "observed": units["observed"].to_numpy(),
            "median": qs[2],
            "lower_50": qs[1],
            "upper_50": qs[3],
            "lower": qs[0],
            "upper": qs[4],
            "extrapolation": units["extrapolation"].to_numpy(),
        }
    )
    out.attrs.update(
        chance=inputs.chance,
        ceiling=inputs.ceiling,
        xlabel=xlabel,
        target=inputs.target,
        ci_prob=prob,
    )
    return out


def _choose_runs(data: pd.DataFrame, runs: Sequence[str] | None, max_runs: int) -> list[str]:
    if runs is not None:
        unknown = sorted(set(runs) - set(data["run"]))
        if unknown:
            raise PlotInputError(
                f"run(s) {unknown} are not in the table.\nHint: choose among "
                f"{sorted(set(data['run']))[:10]}."
            )
        return list(runs)
    # Runs with forecasts to make (target missing) come first, then the longest runs.
    stats = data.groupby("run").agg(
        missing=("observed", lambda s: int(s.isna().sum())), n=("unit", "size")
    )
    stats = stats.sort_values(["missing", "n"], ascending=False)
    return sorted(stats.index[:max_runs].to_list())  # chosen by need, shown by name


def plot_forecast_fan(
    forecaster: Any,
    *,
    table: Any = None,
    x: Literal["flops", "step"] = "flops",
    ci_prob: float = 0.9,
    runs: Sequence[str] | None = None,
    max_runs: int = 6,
    n_samples: int = 1000,
    random_seed: int = 0,
    var_name: str = "target_p",
    title: str | None = None,
) -> Any:
    """Fan chart of the target's forecast against log compute or training step, per run.

    Each panel is one training run: gray bands are the central 50% and ``ci_prob``
    predictive intervals of the true (expected) score, the black line the median, filled
    circles the observed target (which scatters around the bands by its sampling noise),
    open triangles the units flagged as extrapolation (outside the training units), and the
    dashed and dotted lines the chance floor and the ceiling. When every run holds a
    single unit (a table of final models), one panel shows all units with interval bars.

    Parameters
    ----------
    forecaster : forecaster or xarray.DataTree
        A fitted forecaster with ``predictive_samples`` and ``forecast`` (the Bayesian
        :class:`~bayesproxy.ProxyForecaster` or any method with uncertainty), or the
        posterior DataTree of a fit (its per-unit ``var_name`` with ``run``/``flops``/
        ``step`` coordinates on ``unit``).
    table : BenchmarkTable, optional
        Units to draw; defaults to the table the forecaster was fitted on.
    x : {"flops", "step"}, default "flops"
        Horizontal axis: log10 training FLOPs or the checkpoint's training step.
    ci_prob : float, default 0.9
        Probability of the outer band.
    runs : sequence of str, optional
        Runs to draw; default: up to ``max_runs``, those with forecasts first.
    max_runs : int, default 6
    n_samples : int, default 1000
        Predictive draws per unit (forecaster input).
    random_seed : int, default 0
    var_name : str, default "target_p"
        Per-unit posterior variable (DataTree input).
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from arviz_base import from_dict
    >>> rng = np.random.default_rng(0)
    >>> dt = from_dict(
    ...     {"posterior": {"target_p": rng.uniform(0.25, 0.9, (2, 40, 4))}},
    ...     dims={"target_p": ["unit"]},
    ...     coords={"unit": ["r@1", "r@2", "r@3", "r@4"]},
    ... )
    >>> dt["posterior"] = dt["posterior"].to_dataset().assign_coords(
    ...     run=("unit", ["r"] * 4), step=("unit", [1.0, 2.0, 3.0, 4.0]))
    >>> fig = plot_forecast_fan(dt, x="step", ci_prob=0.9)
    """
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    if max_runs < 1:
        raise PlotInputError(f"max_runs={max_runs} must be at least 1.\nHint: pass max_runs=6.")
    data = fan_data(
        forecaster,
        table=table,
        x=x,
        ci_prob=ci_prob,
        n_samples=n_samples,
        random_seed=random_seed,
        var_name=var_name,
    )
    prob = data.attrs["ci_prob"]
    if not np.isfinite(data["x"]).any():
        other = "step" if x == "flops" else "flops"
        raise PlotInputError(
            f"no unit has a usable {x!r} value, so there is no axis to draw against.\n"
            f"Hint: pass x={other!r}, or give the table a {x!r} column."
        )
    data = data[np.isfinite(data["x"])]
    single_units = bool((data.groupby("run").size() <= 1).all())
    if single_units:
        panels = {"all units": data}
    else:
        chosen = _choose_runs(data, runs, max_runs)
        panels = {run: data[data["run"] == run] for run in chosen}

    ncols = min(3, len(panels))
    nrows = int(np.ceil(len(panels) / ncols))
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(4.2 * ncols, 3.4 * nrows + 0.6),
        squeeze=False,
        sharey=True,
        layout="constrained",
    )
    chance, ceiling = data.attrs["chance"], data.attrs["ceiling"]
    for ax, (run, panel) in zip(axes.flat, panels.items(), strict=False):
        panel = panel.sort_values("x")
        if single_units:
            ax.vlines(panel["x"], panel["lower"], panel["upper"], color=GRAYS[2], linewidth=1)
            ax.vlines(panel["x"], panel["lower_50"], panel["upper_50"], color=GRAYS[1], lw=3)
            ax.plot(panel["x"], panel["median"], "_", color="black", markersize=8)
        else:
            ax.fill_between(panel["x"], panel["lower"], panel["upper"], color="0.85", lw=0)
            ax.fill_between(panel["x"], panel["lower_50"], panel["upper_50"], color="0.65", lw=0)
            ax.plot(panel["x"], panel["median"], "-", color="black", linewidth=1.5)
        seen = panel[panel["observed"].notna()]
        ax.plot(seen["x"], seen["observed"], "o", color="black", markersize=4.5, zorder=3)
        flagged = panel[panel["extrapolation"]]
        ax.plot(
            flagged["x"],
            flagged["median"],
            "^",
            markerfacecolor="white",
            markeredgecolor="black",
            markersize=7,
            zorder=4,
        )
        ax.axhline(chance, color="black", linestyle="--", linewidth=0.9)
        ax.axhline(ceiling, color="black", linestyle=":", linewidth=0.9)
        ax.set_title(f"run {run}" if not single_units else run, fontsize=9)
        ax.set_xlabel(data.attrs["xlabel"])
        ax.grid(True, color="0.9", linewidth=0.5)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    target = data.attrs["target"] or "target"
    for ax in axes[:, 0]:
        ax.set_ylabel(f"{target} score (fraction correct)")
    handles = [
        Patch(color="0.65", label="50% interval"),
        Patch(color="0.85", label=f"{prob:.0%} interval"),
        Line2D([], [], color="black", label="median forecast"),
        Line2D([], [], marker="o", color="black", linestyle="none", label="observed"),
        Line2D(
            [],
            [],
            marker="^",
            markerfacecolor="white",
            markeredgecolor="black",
            linestyle="none",
            label="extrapolated unit",
        ),
        Line2D([], [], color="black", linestyle="--", label=f"chance floor ({chance:.2f})"),
        Line2D([], [], color="black", linestyle=":", label=f"ceiling ({ceiling:.2f})"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=4, fontsize=8, frameon=False)
    fig.suptitle(
        title or f"Forecast of {target}: median with 50% and {prob:.0%} predictive intervals",
        fontsize=11,
    )
    return fig
