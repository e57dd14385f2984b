"""Backtests: splits, metrics and a harness that ranks forecasters on the same folds.

Examples
--------
>>> from bayesproxy.backtest import parse_split
>>> parse_split("compute:8.4e22").name
'compute:8.4e+22'
"""

from bayesproxy.backtest.errors import BacktestError, SplitError
from bayesproxy.backtest.harness import BacktestResult, MethodSpec, backtest, mask_target
from bayesproxy.backtest.splits import (
    ComputeCutoff,
    EarlyToLate,
    Fold,
    LeaveOneFamilyOut,
    LeaveOneUnitOut,
    SmallToLarge,
    Split,
    parse_split,
)

__all__ = [
    "BacktestError",
    "BacktestResult",
    "ComputeCutoff",
    "EarlyToLate",
    "Fold",
    "LeaveOneFamilyOut",
    "LeaveOneUnitOut",
    "MethodSpec",
    "SmallToLarge",
    "Split",
    "SplitError",
    "backtest",
    "mask_target",
    "parse_split",
]
