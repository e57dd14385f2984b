"""Errors of the backtest harness (bad split specifications, unusable folds)."""

from __future__ import annotations

from bayesproxy.errors import BayesproxyError

__all__ = ["BacktestError", "SplitError"]


class BacktestError(BayesproxyError, ValueError):
    """A backtest that cannot run as asked (no methods, unknown metric, bad executor, ...)."""

    def __init__(self, message: str, *, hint: str) -> None:
        self.hint = hint
        super().__init__(f"{message}\nHint: {hint}")


class SplitError(BacktestError):
    """A split that cannot be parsed, or that leaves no training or no test units."""
