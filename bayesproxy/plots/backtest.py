"""The backtest comparison figure, re-exported so every plot lives under ``bayesproxy.plots``.

The figure itself is defined next to the harness that produces its data
(:mod:`bayesproxy.backtest.plotting`); this module adds nothing but the name.
"""

from bayesproxy.backtest.plotting import plot_backtest_comparison

__all__ = ["plot_backtest_comparison"]
