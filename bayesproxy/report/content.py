"""Gather what a report says about a fit: data, convergence, weights, forecasts, figures.

The renderers (:mod:`bayesproxy.report.html`, :mod:`bayesproxy.report.markdown`) only
format this content, so the two formats cannot drift apart.
"""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayesproxy.plots._common import PlotInputError, as_datatree, check_prob, figure_of

__all__ = ["ASSUMPTIONS", "Figure", "ReportContent", "convergence_verdict", "gather"]

#: The model's assumptions, stated in every report so readers can judge the forecasts.
ASSUMPTIONS: tuple[str, ...] = (
    "Each unit (a model or a checkpoint of a run) has a latent capability; families share "
    "a partially pooled trend of capability in log training compute.",
    "Every proxy task's transformed score is linear in the capability plus task-specific "
    "variation and run-to-run noise; replicates (seeds, data variants) measure that noise.",
    "Alignment is the share of a proxy's true-score variance that the capability explains; "
    "stability is the share of its variance not due to training noise; a proxy's weight "
    "rises with both.",
    "The target follows a sigmoid emergence curve in the capability between its chance "
    "floor and a ceiling; forecast intervals are for the score a new evaluation would "
    "report, so they include its sampling noise (Binomial over the task's items, or the "
    "fitted Beta noise) and may reach slightly below chance.",
    "Forecasts for units outside the training units are flagged as extrapolation; their "
    "intervals widen with the distance from the training units but rest on the assumption "
    "that the same emergence curve continues.",
    "Intervals are posterior predictive intervals: they are only as good as the MCMC run "
    "(see the convergence verdict) and the model's fit (see the calibration checks).",
)


@dataclass(frozen=True)
class Figure:
    """One rendered figure (PNG bytes) or why it could not be drawn."""

    key: str
    title: str
    png: bytes | None
    note: str = ""


@dataclass(frozen=True)
class ReportContent:
    """Everything a report shows; renderers only format it."""

    title: str
    target: str
    ci_prob: float
    provenance: dict[str, str]
    data_summary: pd.DataFrame
    converged: bool
    convergence_reasons: list[str]
    convergence_table: pd.DataFrame
    weights: pd.DataFrame
    forecasts: pd.DataFrame
    extrapolation_warnings: list[str]
    figures: list[Figure] = field(default_factory=list)
    assumptions: tuple[str, ...] = ASSUMPTIONS


def convergence_verdict(dt: xr.DataTree) -> tuple[bool, list[str], pd.DataFrame]:
    """Judge an MCMC run by R-hat, effective sample size and divergences.

    Parameters
    ----------
    dt : xarray.DataTree
        With a ``posterior`` group (and ``sample_stats`` for divergences).

    Returns
    -------
    converged : bool
    reasons : list of str
        What failed (empty when converged).
    table : pandas.DataFrame
        Per variable: worst R-hat, smallest bulk and tail ESS.

    Examples
    --------
    >>> import arviz_stats  # registers the accessor ArviZ's testing trees use
    >>> from arviz_base import testing
    >>> ok, reasons, table = convergence_verdict(testing.datatree())
    >>> ok, any("divergent" in r for r in reasons)
    (False, True)
    """
    # the thresholds and estimators of the fit's own gate, so the two never disagree
    from bayesproxy.model.convergence import RHAT_MAX, ess_floor, variable_diagnostics

    posterior = dt["posterior"].to_dataset()
    n_chains = int(posterior.sizes.get("chain", 1))
    table = (
        variable_diagnostics(posterior)
        .rename(
            columns={"rhat": "max_rhat", "ess_bulk": "min_ess_bulk", "ess_tail": "min_ess_tail"}
        )
        .rename_axis("variable")
        .reset_index()
    )
    reasons = []
    if n_chains < 2:
        reasons.append("only one chain was run, so R-hat cannot check mixing")
    worst = table["max_rhat"].max()
    if not worst <= RHAT_MAX:
        bad = table.loc[~(table["max_rhat"] <= RHAT_MAX), "variable"].tolist()
        reasons.append(f"R-hat up to {worst:.3f} (> {RHAT_MAX}) for {', '.join(bad)}")
    need = ess_floor(n_chains)
    low = table[(table["min_ess_bulk"] < need) | (table["min_ess_tail"] < need)]
    if len(low):
        smallest = float(low[["min_ess_bulk", "min_ess_tail"]].min().min())
        reasons.append(
            f"effective sample size as low as {smallest:.0f} (< {need:.0f}) for "
            f"{', '.join(low['variable'])}"
        )
    if "sample_stats" in dt.children and "diverging" in dt["sample_stats"].data_vars:
        n_div = int(dt["sample_stats"]["diverging"].sum())
        if n_div:
            reasons.append(f"{n_div} divergent transitions")
    return not reasons, reasons, table


def _verdict(forecaster: Any, dt: xr.DataTree) -> tuple[bool, list[str], pd.DataFrame]:
    """Judge by the forecaster's own gate when it has one, else by convergence_verdict."""
    if isinstance(forecaster, xr.DataTree) or not hasattr(forecaster, "diagnostics"):
        return convergence_verdict(dt)
    from bayesproxy.model.convergence import RHAT_MAX

    table = forecaster.diagnostics()
    ok = bool(table.attrs.get("ok", bool(table["ok"].all())))
    reasons = []
    failing = table.index[~table["ok"].astype(bool)].tolist()
    if failing:
        reasons.append(
            f"R-hat above {RHAT_MAX} or effective sample size too low for "
            f"{', '.join(map(str, failing[:8]))}" + (" and more" if len(failing) > 8 else "")
        )
    if table.attrs.get("divergences"):
        reasons.append(f"{table.attrs['divergences']} divergent transitions")
    if not ok and not reasons:
        reasons.append("the model's convergence gate failed")
    shown = table.reset_index().rename(columns={"index": "variable"})
    return ok, reasons, shown


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()


def _figure(key: str, title: str, draw: Any) -> Figure:
    try:
        made = draw()
    except PlotInputError as error:
        return Figure(key, title, None, note=str(error).split("\n")[0])
    fig = made if hasattr(made, "savefig") and hasattr(made, "axes") else figure_of(made)
    return Figure(key, title, _png(fig))


def _fitted_table(forecaster: Any) -> Any:
    for name in ("table", "table_", "train_table", "fitted_table"):
        table = getattr(forecaster, name, None)
        if table is not None and hasattr(table, "dataset"):
            return table
    return None


def _data_summary(table: Any, dt: xr.DataTree, target: str) -> pd.DataFrame:
    rows: list[tuple[str, str]] = []
    if table is not None:
        ds = table.dataset
        tasks = [str(t) for t in ds["task"].values]
        observed = ds["score"].sel(task=target).notnull()
        if "replicate" in observed.dims:
            observed = observed.any("replicate")
        rows += [
            ("units (models or checkpoints)", str(ds.sizes["unit"])),
            ("training runs", str(len(set(ds["run"].values.tolist())))),
            ("families", str(len({f for f in ds["family"].values.tolist() if f}) or "unknown")),
            ("tasks (target + proxies)", str(len(tasks))),
            ("replicates", str(ds.sizes.get("replicate", 1))),
            ("units with the target observed", str(int(observed.sum()))),
            ("units to forecast (target missing)", str(int((~observed).sum()))),
        ]
        flops = np.asarray(ds["flops"].values, dtype=float)
        if np.isfinite(flops).any():
            rows.append(
                (
                    "training compute range",
                    f"{np.nanmin(flops):.3g} to {np.nanmax(flops):.3g} FLOPs",
                )
            )
        steps = np.asarray(ds["step"].values, dtype=float)
        if np.isfinite(steps).any():
            rows.append(("checkpoint steps", f"{np.nanmin(steps):.0f} to {np.nanmax(steps):.0f}"))
    posterior = dt["posterior"]
    rows.append(("target", target or "unknown"))
    if "proxy" in posterior.dims:
        rows.append(("proxies", ", ".join(str(p) for p in posterior["proxy"].values)))
    rows.append(
        (
            "posterior draws",
            f"{posterior.sizes.get('chain', 1)} chains × {posterior.sizes.get('draw', 0)} draws",
        )
    )
    return pd.DataFrame(rows, columns=["quantity", "value"])


def _weights(forecaster: Any, dt: xr.DataTree, prob: float) -> pd.DataFrame:
    if not isinstance(forecaster, xr.DataTree) and hasattr(forecaster, "weights"):
        frame = forecaster.weights(prob=prob)
        return frame.sort_values("weight", key=np.abs, ascending=False).reset_index(drop=True)
    posterior = dt["posterior"].to_dataset()
    names = [v for v in ("alignment", "stability", "weight") if v in posterior.data_vars]
    if not names:
        return pd.DataFrame()
    lo, hi = (1 - prob) / 2, (1 + prob) / 2
    columns = {}
    for name in names:
        q = posterior[name].quantile([lo, 0.5, hi], dim=["chain", "draw"])
        columns[f"{name} median"] = q.sel(quantile=0.5).to_series()
        columns[f"{name} {prob:.0%} interval"] = [
            f"[{a:.2f}, {b:.2f}]"
            for a, b in zip(q.sel(quantile=lo).values, q.sel(quantile=hi).values, strict=True)
        ]
    frame = pd.DataFrame(columns)
    frame.index.name = "proxy"
    sort = "weight median" if "weight median" in frame else frame.columns[0]
    return frame.sort_values(sort, ascending=False).reset_index()


def _forecasts(forecaster: Any, dt: xr.DataTree, prob: float) -> pd.DataFrame:
    if not isinstance(forecaster, xr.DataTree) and hasattr(forecaster, "forecast"):
        return forecaster.forecast(prob=prob).reset_index(drop=True)
    posterior = dt["posterior"]
    if "target_p" not in posterior.data_vars:
        return pd.DataFrame()
    da = posterior["target_p"]
    q = da.quantile([(1 - prob) / 2, 0.5, (1 + prob) / 2], dim=["chain", "draw"])
    frame = pd.DataFrame(
        {
            "unit": [str(u) for u in da["unit"].values],
            "mean": da.mean(["chain", "draw"]).values,
            "median": q.isel(quantile=1).values,
            "lower": q.isel(quantile=0).values,
            "upper": q.isel(quantile=2).values,
        }
    )
    for name in ("distance", "extrapolation"):
        if name in da["unit"].coords:
            frame[name] = da["unit"].coords[name].values
    return frame


def gather(
    forecaster: Any,
    *,
    table: Any = None,
    ci_prob: float = 0.9,
    title: str | None = None,
    figures: bool = True,
) -> ReportContent:
    """Collect the content of a report on a fitted forecaster (or its DataTree).

    Parameters
    ----------
    forecaster : ProxyForecaster or xarray.DataTree
    table : BenchmarkTable, optional
        The table the fit was made on: adds its summary and the observed target scores.
    ci_prob : float, default 0.9
        Probability of every interval in the report.
    title : str, optional
    figures : bool, default True
        Render the figures (set False for a quick text-only report).

    Returns
    -------
    ReportContent

    Examples
    --------
    >>> import arviz_stats  # registers the accessor ArviZ's testing trees use
    >>> from arviz_base import testing
    >>> content = gather(testing.datatree(), figures=False)
    >>> content.converged
    False
    """
    from bayesproxy import plots

    prob = check_prob(ci_prob)
    dt = as_datatree(forecaster)
    if "posterior" not in dt.children:
        raise PlotInputError(
            "the fit has no 'posterior' group, so there is nothing to report.\n"
            "Hint: fit the model first (ProxyForecaster(...).fit(table)) and save it."
        )
    dt = _with_predictive_checks(dt)
    target = str(getattr(forecaster, "target", "") or dt.attrs.get("target", ""))
    table = table if table is not None else _fitted_table(forecaster)
    converged, reasons, conv_table = _verdict(forecaster, dt)
    forecasts = _forecasts(forecaster, dt, prob)
    warnings_ = []
    if "extrapolation" in forecasts:
        for _, row in forecasts[forecasts["extrapolation"].astype(bool)].iterrows():
            distance = row.get("distance", np.nan)
            where = f" ({distance:.1f} training SDs away)" if np.isfinite(distance) else ""
            warnings_.append(
                f"{row['unit']}: outside the training units{where}; its interval assumes the "
                "emergence curve continues."
            )
    provenance = {
        key: str(dt.attrs[key])
        for key in ("bayesproxy_version", "schema_version", "data_fingerprint", "sampler")
        if key in dt.attrs
    }
    if "sampler" in provenance:
        with contextlib.suppress(ValueError):  # JSON in the attrs: show it compactly
            provenance["sampler"] = json.dumps(json.loads(provenance["sampler"]))
    figs: list[Figure] = []
    if figures:
        figs = [
            _figure("weights", "Proxy weights", lambda: plots.plot_weights(dt, ci_prob=prob)),
            _figure(
                "alignment_stability",
                "Alignment vs stability",
                lambda: plots.plot_alignment_stability(dt, ci_prob=prob),
            ),
            _figure(
                "forecast_fan",
                "Forecast fan",
                lambda: _fan(plots, forecaster, table, prob),
            ),
            _figure("ppc", "Posterior predictive check", lambda: plots.plot_ppc(dt)),
            _figure("loo_pit", "LOO-PIT calibration", lambda: plots.plot_loo_pit(dt, ci_prob=prob)),
            _figure(
                "rank", "Rank plot (convergence)", lambda: plots.plot_convergence(dt, ci_prob=prob)
            ),
        ]
    return ReportContent(
        title=title or f"bayesproxy report: forecasting {target or 'the target'}",
        target=target,
        ci_prob=prob,
        provenance=provenance,
        data_summary=_data_summary(table, dt, target),
        converged=converged,
        convergence_reasons=reasons,
        convergence_table=conv_table,
        weights=_weights(forecaster, dt, prob),
        forecasts=forecasts,
        extrapolation_warnings=warnings_,
        figures=figs,
    )


def _with_predictive_checks(dt: xr.DataTree) -> xr.DataTree:
    """Add the target's posterior predictive and log-likelihood groups when a fit lacks them.

    A bayesproxy fit has everything they need (computed in NumPy, no MCMC); any other tree
    is returned as it is and its check figures say what is missing.
    """
    if {"posterior_predictive", "log_likelihood"} <= set(dt.children):
        return dt
    from bayesproxy.model.predictive import PredictiveInputError, add_predictive_groups

    try:
        return add_predictive_groups(dt)
    except PredictiveInputError:
        return dt


def _fan(plots: Any, source: Any, table: Any, prob: float) -> Any:
    """Fan against compute when the units have it, else against the training step."""
    kwargs = {} if isinstance(source, xr.DataTree) else {"table": table}
    try:
        return plots.plot_forecast_fan(source, x="flops", ci_prob=prob, **kwargs)
    except PlotInputError:
        return plots.plot_forecast_fan(source, x="step", ci_prob=prob, **kwargs)
