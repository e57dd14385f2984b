"""Diagnostic figures of a fit: proxy weights, forecast fans, calibration, convergence.

Every function takes a fitted forecaster or its DataTree (keyword-only options past the
first argument), asks for interval probabilities explicitly (``ci_prob``) rather than
relying on ArviZ's defaults, draws with matplotlib, and returns an ArviZ
``PlotCollection`` or a matplotlib figure. Figures have titles and labelled axes, and tell
series apart by marker, line style and gray level, so they read in grayscale.

Examples
--------
>>> import matplotlib
>>> matplotlib.use("Agg")
>>> import arviz_stats  # registers the accessor ArviZ's testing trees use
>>> from arviz_base import testing
>>> from bayesproxy import plots
>>> pc = plots.plot_convergence(testing.datatree(), kind="rank", var_names=["mu"])
>>> pc.savefig("rank.png")  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

from bayesproxy.plots._common import PlotInputError

_LAZY: dict[str, str] = {
    "plot_weights": "bayesproxy.plots.weights",
    "plot_alignment_stability": "bayesproxy.plots.weights",
    "plot_forecast_fan": "bayesproxy.plots.forecast",
    "fan_data": "bayesproxy.plots.forecast",
    "plot_ppc": "bayesproxy.plots.checks",
    "plot_loo_pit": "bayesproxy.plots.checks",
    "plot_convergence": "bayesproxy.plots.convergence",
    "plot_relevance_heatmap": "bayesproxy.plots.relevance",
    "plot_backtest_comparison": "bayesproxy.plots.backtest",
}

__all__ = ["PlotInputError", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'bayesproxy.plots' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
