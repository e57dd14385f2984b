"""Posterior predictive check and LOO-PIT calibration of the target."""

from __future__ import annotations

from typing import Any

from bayesproxy.plots._common import (
    as_datatree,
    check_prob,
    figure_of,
    label_axes,
    require_group,
    require_vars,
)

__all__ = ["plot_loo_pit", "plot_ppc"]

TARGET_VAR = "target_obs"


def _target_var(dt: Any, var_name: str | None, group: str) -> str:
    ds = require_group(dt, group, why="this check")
    if var_name is None:
        var_name = TARGET_VAR if TARGET_VAR in ds.data_vars else None
        if var_name is None and len(ds.data_vars) == 1:
            var_name = str(next(iter(ds.data_vars)))
        if var_name is None:
            var_name = TARGET_VAR  # let require_vars name the choices
    return require_vars(ds, [var_name], group=group)[0]


def plot_ppc(
    fit: Any,
    *,
    var_name: str | None = None,
    kind: str = "ecdf",
    num_samples: int = 50,
    title: str | None = None,
) -> Any:
    """Posterior predictive check: replicated target scores against the observed ones.

    Gray curves are ``num_samples`` posterior predictive replicates of the observed target,
    the black curve the observed data; the observed curve should look like one of them.

    Parameters
    ----------
    fit : ProxyForecaster or xarray.DataTree
        A fit with ``posterior_predictive`` and ``observed_data`` groups.
    var_name : str, optional
        Observed variable; ``"target_obs"`` in a bayesproxy fit, or the only variable.
    kind : {"ecdf", "kde", "hist"}, default "ecdf"
        ECDFs need no bandwidth choice, so they are the default.
    num_samples : int, default 50
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
    >>> pc = plot_ppc(testing.datatree(), num_samples=20)
    """
    from arviz_plots import plot_ppc_dist

    dt = as_datatree(fit)
    name = _target_var(dt, var_name, "posterior_predictive")
    require_vars(
        require_group(dt, "observed_data", why="the posterior predictive check"),
        [name],
        group="observed_data",
    )
    pc = plot_ppc_dist(
        dt,
        var_names=[name],
        kind=kind,
        num_samples=num_samples,
        backend="matplotlib",
        figure_kwargs={"figsize": (7.0, 4.2)},
        visuals={
            "predictive_dist": {"color": "0.6", "alpha": 0.5, "linewidth": 0.8},
            "observed_dist": {"color": "black", "linewidth": 2.0, "linestyle": "--"},
        },
    )
    ylabel = {"ecdf": "cumulative probability", "kde": "density", "hist": "density"}.get(
        kind, "density"
    )
    label_axes(figure_of(pc).axes, xlabel=f"{name} (observed scale)", ylabel=ylabel)
    figure_of(pc).set_layout_engine("constrained")  # no title/label overlap
    pc.add_title(
        title
        or f"Posterior predictive check of {name}:\n{num_samples} replicates (gray) vs "
        "observed (black dashed)",
        size=10,
    )
    return pc


def plot_loo_pit(
    fit: Any,
    *,
    var_name: str | None = None,
    ci_prob: float = 0.9,
    coverage: bool = False,
    title: str | None = None,
) -> Any:
    """Plot LOO-PIT calibration: is each observed target score a typical predictive draw.

    Shows the difference between the ECDF of the leave-one-out probability integral
    transform values and the uniform CDF (flat at zero for a calibrated model), with the
    p-value of ArviZ's uniformity test at level ``1 - ci_prob`` and the points that drive
    any departure marked. Needs PSIS-LOO, hence the ``log_likelihood`` group.

    Parameters
    ----------
    fit : ProxyForecaster or xarray.DataTree
        A fit with ``posterior_predictive``, ``observed_data`` and ``log_likelihood``.
    var_name : str, optional
        Observed variable; ``"target_obs"`` in a bayesproxy fit.
    ci_prob : float, default 0.9
        The test's confidence: points are flagged at level ``1 - ci_prob``.
    coverage : bool, default False
        Plot central interval coverage instead of PIT uniformity.
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
    >>> pc = plot_loo_pit(testing.datatree(), ci_prob=0.9)
    """
    from arviz_plots import plot_loo_pit as _plot_loo_pit

    prob = check_prob(ci_prob)
    dt = as_datatree(fit)
    name = _target_var(dt, var_name, "posterior_predictive")
    for group in ("observed_data", "log_likelihood"):
        require_vars(require_group(dt, group, why="LOO-PIT"), [name], group=group)
    pc = _plot_loo_pit(
        dt,
        var_names=[name],
        envelope_prob=prob,
        coverage=coverage,
        backend="matplotlib",
        figure_kwargs={"figsize": (7.0, 4.2)},
        visuals={
            "ecdf_lines": {"color": "black"},
            "credible_interval": {"color": "0.6", "alpha": 0.4},
        },
    )
    label_axes(
        figure_of(pc).axes,
        xlabel="LOO-PIT value (0 to 1)" if not coverage else "central interval probability",
        ylabel="ECDF minus uniform CDF (Δ-ECDF)",
    )
    figure_of(pc).set_layout_engine("constrained")  # no title/label overlap
    pc.add_title(
        title
        or f"LOO-PIT calibration of {name}: Δ-ECDF vs uniform,\nuniformity test at "
        f"α = {1 - prob:.2f} (p-value shown; marked points drive any misfit)",
        size=10,
    )
    return pc
