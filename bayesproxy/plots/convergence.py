"""MCMC convergence plots: rank, trace and energy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from bayesproxy.plots._common import (
    PlotInputError,
    as_datatree,
    check_prob,
    figure_of,
    label_axes,
    require_group,
    require_vars,
)

__all__ = ["DEFAULT_CONVERGENCE_VARS", "plot_convergence"]

#: What a bayesproxy fit shows by default: the quantities users read off the model.
DEFAULT_CONVERGENCE_VARS: tuple[str, ...] = ("alignment", "stability", "weight")


def plot_convergence(
    fit: Any,
    *,
    kind: Literal["rank", "trace", "energy"] = "rank",
    var_names: Sequence[str] | None = None,
    ci_prob: float = 0.9,
    coords: dict[str, Any] | None = None,
    title: str | None = None,
) -> Any:
    """Convergence diagnostics of the MCMC run behind a fit.

    ``"rank"``: per-chain fractional-rank Δ-ECDFs with a simultaneous ``ci_prob``
    envelope (chains sampling the same posterior stay inside it); ``"trace"``: per-chain
    marginal ECDFs and traces; ``"energy"``: marginal vs transition energy with BFMI.

    Parameters
    ----------
    fit : ProxyForecaster or xarray.DataTree
    kind : {"rank", "trace", "energy"}, default "rank"
    var_names : sequence of str, optional
        Posterior variables; defaults to alignment, stability and weight where present,
        otherwise every posterior variable.
    ci_prob : float, default 0.9
        Envelope probability of the rank plot.
    coords : dict, optional
        Subset, e.g. ``{"proxy": ["arc", "mmlu"]}``.
    title : str, optional

    Returns
    -------
    arviz_plots.PlotCollection

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from arviz_base import testing
    >>> pc = plot_convergence(testing.datatree(), kind="rank", var_names=["mu", "tau"])
    """
    import arviz_plots as azp

    prob = check_prob(ci_prob)
    dt = as_datatree(fit)
    if kind == "energy":
        stats = require_group(dt, "sample_stats", why="the energy plot")
        require_vars(stats, ["energy"], group="sample_stats")
        pc = azp.plot_energy(
            dt,
            backend="matplotlib",
            visuals={"dist": {"color": "black"}},
        )
        label_axes(figure_of(pc).axes, xlabel="energy minus its mean (NUTS Hamiltonian, nats)")
        pc.add_title(title or "Energy: marginal vs transition distribution, with BFMI", size=10)
        return pc
    posterior = require_group(dt, "posterior", why=f"the {kind} plot")
    if var_names is None:
        present = [v for v in DEFAULT_CONVERGENCE_VARS if v in posterior.data_vars]
        names = present or [str(v) for v in posterior.data_vars]
    else:
        names = require_vars(posterior, var_names, group="posterior")
    if kind == "rank":
        pc = azp.plot_rank(
            dt, var_names=names, coords=coords, envelope_prob=prob, backend="matplotlib"
        )
        label_axes(figure_of(pc).axes, ylabel="ECDF minus uniform (Δ-ECDF)")
        pc.add_title(
            title or f"Rank plot per chain: Δ-ECDF with {prob:.0%} simultaneous envelope",
            size=10,
        )
    elif kind == "trace":
        # ECDFs need no bandwidth, so chains compare honestly even with few draws.
        pc = azp.plot_trace_dist(
            dt, var_names=names, coords=coords, kind="ecdf", backend="matplotlib"
        )
        fig = figure_of(pc)
        visible = [a for a in fig.axes if a.axison]
        # arviz lays the grid out row by row: (distribution, trace) per variable.
        label_axes(visible[0::2], xlabel="value (parameter units)", ylabel="ECDF")
        label_axes(visible[1::2], xlabel="draw (iteration)", ylabel="value")
        pc.add_title(title or "Trace plot: marginal ECDFs and traces per chain", size=10)
    else:
        raise PlotInputError(
            f"kind={kind!r} is not a convergence plot.\n"
            "Hint: pass kind='rank', kind='trace' or kind='energy'."
        )
    return pc
