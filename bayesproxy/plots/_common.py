"""Shared plumbing for the plot functions: inputs, checks and a grayscale-safe style.

Every figure must read in grayscale, so series differ by marker and line style first and by
shade of gray second; colour is never the only cue.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import xarray as xr

from bayesproxy.errors import BayesproxyError

__all__ = [
    "GRAYS",
    "LINESTYLES",
    "MARKERS",
    "PlotInputError",
    "as_datatree",
    "check_prob",
    "figure_of",
    "require_group",
    "require_vars",
]

# Distinct in grayscale: markers and dashes carry identity, gray levels only reinforce it.
MARKERS: tuple[str, ...] = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES: tuple[str, ...] = ("-", "--", ":", "-.")
GRAYS: tuple[str, ...] = ("0.0", "0.35", "0.55", "0.2", "0.45", "0.65")

# Attribute names under which a fitted forecaster may hold its posterior DataTree.
_DATATREE_ATTRIBUTES: tuple[str, ...] = ("datatree", "idata", "datatree_", "idata_", "trace")


class PlotInputError(BayesproxyError, ValueError):
    """The object handed to a plot or report lacks what that figure needs."""


def as_datatree(obj: Any) -> xr.DataTree:
    """Return the posterior DataTree of a fitted forecaster, or ``obj`` if it is one.

    Parameters
    ----------
    obj : xarray.DataTree or fitted forecaster
        A DataTree (e.g. from ``pm.sample`` or ``xr.open_datatree``) or a fitted
        :class:`~bayesproxy.ProxyForecaster`.

    Returns
    -------
    xarray.DataTree

    Raises
    ------
    PlotInputError
        When ``obj`` is neither, or the forecaster has not been fitted.

    Examples
    --------
    >>> import arviz_stats  # registers the accessor ArviZ's testing trees use
    >>> from arviz_base import testing
    >>> dt = testing.datatree()
    >>> as_datatree(dt) is dt
    True
    """
    if isinstance(obj, xr.DataTree):
        return obj
    for name in _DATATREE_ATTRIBUTES:
        value = getattr(obj, name, None)
        if isinstance(value, xr.DataTree):
            return value
    raise PlotInputError(
        f"expected a fitted forecaster or an xarray.DataTree, got {type(obj).__name__}.\n"
        "Hint: call .fit(table) first, or load a saved fit with ProxyForecaster.load(path) "
        "or xarray.open_datatree(path)."
    )


def require_group(dt: xr.DataTree, group: str, *, why: str) -> xr.Dataset:
    """Return ``dt[group]`` as a Dataset or raise a :class:`PlotInputError` saying why.

    Examples
    --------
    >>> import arviz_stats  # registers the accessor ArviZ's testing trees use
    >>> from arviz_base import testing
    >>> list(require_group(testing.datatree(), "posterior", why="a forest plot").data_vars)
    ['mu', 'theta', 'tau']
    """
    if group not in dt.children:
        raise PlotInputError(
            f"the DataTree has no {group!r} group, which {why} needs; it has "
            f"{sorted(dt.children)}.\n"
            f"Hint: {_GROUP_HINTS.get(group, 'produce that group when fitting')}"
        )
    return dt[group].to_dataset()


_GROUP_HINTS = {
    "posterior": "fit the model (ProxyForecaster(...).fit(table)) before plotting.",
    "posterior_predictive": "sample the posterior predictive of the target "
    "(pm.sample_posterior_predictive) and add it to the DataTree.",
    "observed_data": "fit on a table where the target is observed on some units.",
    "log_likelihood": "compute the pointwise log-likelihood (pm.compute_log_likelihood) "
    "and add it to the DataTree.",
    "sample_stats": "sample with NUTS (the default), which records sampler statistics.",
}


def require_vars(ds: xr.Dataset, names: Iterable[str], *, group: str) -> list[str]:
    """Check that ``names`` are variables of ``ds``; return them as a list.

    Examples
    --------
    >>> import arviz_stats  # registers the accessor ArviZ's testing trees use
    >>> from arviz_base import testing
    >>> require_vars(testing.datatree().posterior.to_dataset(), ["mu"], group="posterior")
    ['mu']
    """
    names = list(names)
    missing = [n for n in names if n not in ds.data_vars]
    if missing:
        raise PlotInputError(
            f"variable(s) {missing} are not in the {group!r} group; it has "
            f"{sorted(map(str, ds.data_vars))}.\n"
            "Hint: pass var_names=... naming variables that exist, or plot a fit made by "
            "bayesproxy.ProxyForecaster."
        )
    return names


def check_prob(value: float, *, name: str = "ci_prob") -> float:
    """Validate an interval probability in (0, 1).

    Examples
    --------
    >>> check_prob(0.9)
    0.9
    """
    try:
        prob = float(value)
    except (TypeError, ValueError):
        prob = float("nan")
    if not 0 < prob < 1:
        raise PlotInputError(
            f"{name}={value!r} is not a probability strictly between 0 and 1.\n"
            f"Hint: pass e.g. {name}=0.9 for a 90% interval."
        )
    return prob


def figure_of(pc: Any) -> Any:
    """Return the matplotlib figure behind an ArviZ ``PlotCollection``.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import arviz_stats  # registers the accessor ArviZ's testing trees use
    >>> from arviz_base import testing
    >>> from arviz_plots import plot_rank
    >>> pc = plot_rank(testing.datatree(), var_names=["mu"], backend="matplotlib")
    >>> type(figure_of(pc)).__name__
    'Figure'
    """
    return pc.get_viz("figure")


def label_axes(
    axes: Sequence[Any], *, xlabel: str | None = None, ylabel: str | None = None
) -> None:
    """Set axis labels on every visible matplotlib axis that lacks one."""
    for ax in axes:
        if not ax.get_visible() or not ax.axison:
            continue
        if xlabel and not ax.get_xlabel():
            ax.set_xlabel(xlabel)
        if ylabel and not ax.get_ylabel():
            ax.set_ylabel(ylabel)
