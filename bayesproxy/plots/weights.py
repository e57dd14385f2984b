"""Proxy weights: forest plot of alignment, stability and weight; alignment vs stability."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from bayesproxy.plots._common import (
    GRAYS,
    MARKERS,
    PlotInputError,
    as_datatree,
    check_prob,
    figure_of,
    label_axes,
    require_group,
    require_vars,
)

__all__ = ["plot_alignment_stability", "plot_weights"]

WEIGHT_VARS: tuple[str, ...] = ("alignment", "stability", "weight")


def plot_weights(
    fit: Any,
    *,
    ci_prob: float = 0.9,
    var_names: Sequence[str] = WEIGHT_VARS,
    ci_kind: str = "eti",
    point_estimate: str = "median",
    title: str | None = None,
) -> Any:
    """Forest plot of each proxy's alignment, stability and weight with intervals.

    Thick bars span the central 50% interval, thin bars the ``ci_prob`` interval, the dot
    is the posterior ``point_estimate``; chains are pooled.

    Parameters
    ----------
    fit : ProxyForecaster or xarray.DataTree
        A fitted forecaster or its posterior DataTree.
    ci_prob : float, default 0.9
        Probability of the outer (thin) interval.
    var_names : sequence of str, default ("alignment", "stability", "weight")
        Posterior variables to show (each with dim ``proxy`` in a bayesproxy fit).
    ci_kind : {"eti", "hdi"}, default "eti"
        Equal-tailed or highest-density intervals.
    point_estimate : {"median", "mean", "mode"}, default "median"
    title : str, optional
        Figure title; a descriptive default names the interval probabilities.

    Returns
    -------
    arviz_plots.PlotCollection

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import arviz_stats  # registers the accessor ArviZ's testing trees use
    >>> from arviz_base import testing
    >>> pc = plot_weights(testing.datatree(), var_names=["mu", "tau"], ci_prob=0.9)
    >>> pc.savefig("weights.png")  # doctest: +SKIP
    """
    from arviz_plots import plot_forest

    prob = check_prob(ci_prob)
    dt = as_datatree(fit)
    posterior = require_group(dt, "posterior", why="the proxy weight forest plot")
    names = require_vars(posterior, var_names, group="posterior")
    inner = 0.5 if prob > 0.5 else prob / 2  # the thick bar must lie inside the thin one
    pc = plot_forest(
        dt,
        var_names=names,
        combined=True,
        ci_kind=ci_kind,
        ci_probs=(inner, prob),
        point_estimate=point_estimate,
        backend="matplotlib",
        # Black intervals on white: unambiguous in grayscale.
        visuals={
            "trunk": {"color": "black"},
            "twig": {"color": "black"},
            "point_estimate": {"color": "white", "edgecolor": "black"},
        },
    )
    fig = figure_of(pc)
    axes = [ax for ax in fig.axes if ax.axison]
    label_axes(
        axes[-1:],
        xlabel=(
            "posterior value (alignment, stability: shares of variance, 0 to 1; "
            "weight: share of the information about the target, |weights| sum to 1)"
        ),
    )
    pc.add_title(
        title
        or f"Proxy alignment, stability and weight: {point_estimate}, "
        f"{inner:.0%} and {prob:.0%} {ci_kind.upper()} intervals",
        size=11,
    )
    return pc


def _interval(da: xr.DataArray, prob: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Median and central ``prob`` interval over chains and draws, per proxy."""
    sample_dims = [d for d in ("chain", "draw") if d in da.dims]
    q = da.quantile([(1 - prob) / 2, 0.5, (1 + prob) / 2], dim=sample_dims)
    return q.isel(quantile=1).values, q.isel(quantile=0).values, q.isel(quantile=2).values


def plot_alignment_stability(
    fit: Any,
    *,
    ci_prob: float = 0.9,
    proxy_dim: str = "proxy",
    title: str | None = None,
    ax: Any = None,
) -> Any:
    """Scatter each proxy's alignment against its stability, with posterior intervals.

    The point is the posterior median, the cross spans the central ``ci_prob`` interval of
    each property, and the marker area grows with the median weight. Good proxies sit in the
    upper right: their score tracks the target's capability and not training noise.

    Parameters
    ----------
    fit : ProxyForecaster or xarray.DataTree
        A fitted forecaster or its DataTree with posterior ``alignment`` and ``stability``
        (and optionally ``weight``) along ``proxy_dim``.
    ci_prob : float, default 0.9
        Probability of the interval bars.
    proxy_dim : str, default "proxy"
    title : str, optional
    ax : matplotlib.axes.Axes, optional
        Draw into this axis instead of a new figure.

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
    ...     {"posterior": {"alignment": rng.beta(5, 2, (2, 50, 3)),
    ...                    "stability": rng.beta(4, 2, (2, 50, 3))}},
    ...     dims={"alignment": ["proxy"], "stability": ["proxy"]},
    ...     coords={"proxy": ["arc", "mmlu", "hellaswag"]},
    ... )
    >>> fig = plot_alignment_stability(dt, ci_prob=0.9)
    """
    import matplotlib.pyplot as plt

    prob = check_prob(ci_prob)
    dt = as_datatree(fit)
    posterior = require_group(dt, "posterior", why="the alignment vs stability plot")
    require_vars(posterior, ["alignment", "stability"], group="posterior")
    for name in ("alignment", "stability"):
        if proxy_dim not in posterior[name].dims:
            raise PlotInputError(
                f"posterior {name!r} has dims {posterior[name].dims}, not {proxy_dim!r}.\n"
                "Hint: pass proxy_dim= naming the dimension that indexes the proxies."
            )
    a_mid, a_lo, a_hi = _interval(posterior["alignment"], prob)
    s_mid, s_lo, s_hi = _interval(posterior["stability"], prob)
    labels = [str(p) for p in posterior[proxy_dim].values]
    if "weight" in posterior.data_vars and proxy_dim in posterior["weight"].dims:
        w = np.abs(_interval(posterior["weight"], prob)[0])
        sizes = 30 + 220 * w / (w.max() if w.max() > 0 else 1.0)
        size_note = "; marker area ∝ median weight"
    else:
        sizes = np.full(len(labels), 60.0)
        size_note = ""

    if ax is None:
        fig, ax = plt.subplots(figsize=(6.4, 5.2), layout="constrained")
    else:
        fig = ax.figure
    ax.errorbar(
        a_mid,
        s_mid,
        xerr=[a_mid - a_lo, a_hi - a_mid],
        yerr=[s_mid - s_lo, s_hi - s_mid],
        fmt="none",
        ecolor=GRAYS[2],
        elinewidth=1.0,
        capsize=2,
        zorder=1,
    )
    ax.scatter(
        a_mid, s_mid, s=sizes, marker=MARKERS[0], facecolor="white", edgecolor="black", zorder=2
    )
    # staggered offsets keep the names of neighbouring proxies apart
    offsets = ((5, 5), (5, -11), (-5, 5), (-5, -11))
    order = np.argsort(a_mid + s_mid)
    for rank, i in enumerate(order):
        dx, dy = offsets[rank % len(offsets)]
        ax.annotate(
            labels[i],
            (a_mid[i], s_mid[i]),
            xytext=(dx, dy),
            textcoords="offset points",
            fontsize=8,
            ha="left" if dx > 0 else "right",
        )
    ax.set_xlabel("alignment (share of true-score variance explained by capability, 0 to 1)")
    ax.set_ylabel("stability (share of variance not due to training noise, 0 to 1)")
    # zoom on the proxies (good ones crowd near 1) but never beyond the [0, 1] scale
    ax.set_xlim(max(-0.02, float(np.nanmin(a_lo)) - 0.05), 1.02)
    ax.set_ylim(max(-0.02, float(np.nanmin(s_lo)) - 0.05), 1.02)
    ax.grid(True, color="0.85", linewidth=0.6)
    ax.set_title(
        title or f"Proxy alignment vs stability (median, {prob:.0%} intervals{size_note})",
        fontsize=10,
    )
    return fig
