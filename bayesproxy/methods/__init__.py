"""Source methods of the proxy-task papers and peer baselines, behind one interface.

Each forecaster lives in its own module and follows :class:`~bayesproxy.methods.base.Forecaster`;
pick one by short name with :func:`get_method`.

Examples
--------
>>> from bayesproxy.methods import available_methods, get_method
>>> "proxy-selection" in available_methods()
True
>>> get_method("compute-sigmoid", target="gsm8k").target
'gsm8k'
"""

from __future__ import annotations

from bayesproxy.methods.base import (
    FORECAST_COLUMNS,
    Forecaster,
    MethodInputError,
    NotFittedError,
    UnknownMethodError,
    available_methods,
    get_method,
    get_method_class,
    make_forecast_frame,
    range_distance,
)

__all__ = [
    "FORECAST_COLUMNS",
    "Forecaster",
    "MethodInputError",
    "NotFittedError",
    "UnknownMethodError",
    "available_methods",
    "get_method",
    "get_method_class",
    "make_forecast_frame",
    "range_distance",
]
