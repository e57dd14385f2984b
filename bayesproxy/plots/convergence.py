"""MCMC convergence plots: rank, trace and energy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

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

    ``"rank"``: per-chain fractional-rank Δ-ECDFs with the p-value of ArviZ's test that
    all chains sample the same distribution, at level ``1 - ci_prob`` (flat curves and
    large p-values are good); ``"trace"``: per-chain
    marginal ECDFs and traces; ``"energy"``: marginal vs transition energy with BFMI.

    Parameters
    ----------
    fit : ProxyForecaster or xarray.DataTree
    kind : {"rank", "trace", "energy"}, default "rank"
    var_names : sequence of str, optional
        Posterior variables; defaults to alignment, stability and weight where present,
        otherwise every posterior variable.
    ci_prob : float, default 0.9
        Confidence of the rank plot's test (level ``1 - ci_prob``).
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
    >>> import arviz_stats  # registers the accessor ArviZ's testing trees use
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
        label_axes(
            figure_of(pc).axes,
            xlabel="energy minus its mean (NUTS Hamiltonian, nats)",
            ylabel="density",
        )
        figure_of(pc).set_layout_engine("constrained")  # no title/label overlap
        pc.add_title(title or "Energy: marginal vs transition distribution, with BFMI", size=10)
        return pc
    if kind not in ("rank", "trace"):
        raise PlotInputError(
            f"kind={kind!r} is not a convergence plot.\n"
            "Hint: pass kind='rank', kind='trace' or kind='energy'."
        )
    posterior = require_group(dt, "posterior", why=f"the {kind} plot")
    if var_names is None:
        present = [v for v in DEFAULT_CONVERGENCE_VARS if v in posterior.data_vars]
        names = present or [str(v) for v in posterior.data_vars]
    else:
        names = require_vars(posterior, var_names, group="posterior")
    # One panel per scalar element: size the figure so titles and tick labels never collide.
    n_panels = sum(
        int(np.prod([n for d, n in posterior[v].sizes.items() if d not in ("chain", "draw")]))
        for v in names
    )
    # chains differ by line style as well as colour, so they separate in grayscale
    by_chain = {"color": ["chain"], "linestyle": ["chain"]}
    if kind == "rank":
        cols = min(4, max(n_panels, 1))
        rows = int(np.ceil(n_panels / cols))
        pc = azp.plot_rank(
            dt,
            var_names=names,
            coords=coords,
            envelope_prob=prob,
            backend="matplotlib",
            aes=by_chain,
            col_wrap=cols,
            figure_kwargs={"figsize": (3.3 * cols, 2.6 * rows + 0.8)},
        )
        label_axes(_first_column(figure_of(pc)), ylabel="Δ-ECDF")
        figure_of(pc).set_layout_engine("constrained")  # no title/label overlap
        pc.add_title(
            title
            or "Rank plot per chain (line style = chain): Δ-ECDF, uniformity test at "
            f"α = {1 - prob:.2f} (p-value per panel; marked points drive any misfit)",
            size=10,
        )
    else:
        # ECDFs need no bandwidth, so chains compare honestly even with few draws.
        pc = azp.plot_trace_dist(
            dt,
            var_names=names,
            coords=coords,
            kind="ecdf",
            backend="matplotlib",
            aes=by_chain,
            figure_kwargs={"figsize": (11.0, 2.2 * len(names) + 0.8)},
        )
        fig = figure_of(pc)
        visible = [a for a in fig.axes if a.axison]
        # arviz lays the grid out row by row: (distribution, trace) per variable.
        label_axes(visible[0::2], xlabel="value (parameter units)", ylabel="ECDF")
        label_axes(visible[1::2], xlabel="draw (iteration)", ylabel="value")
        figure_of(pc).set_layout_engine("constrained")  # no title/label overlap
        pc.add_title(title or "Trace plot: marginal ECDFs and traces per chain", size=10)
    return pc


def _first_column(fig: Any) -> list[Any]:
    """Visible axes in the leftmost column of a grid (where a shared y label belongs)."""
    axes = [ax for ax in fig.axes if ax.get_visible() and ax.axison]
    if not axes:
        return []
    left = min(ax.get_position().x0 for ax in axes)
    return [ax for ax in axes if ax.get_position().x0 - left < 0.02]
