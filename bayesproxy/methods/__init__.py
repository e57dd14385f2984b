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

import importlib
from typing import Any

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

# forecaster classes, importable from here without importing every method module up front
_CLASSES: dict[str, str] = {
    "ComputeSigmoidForecaster": "bayesproxy.methods.compute_sigmoid",
    "LossAccuracyForecaster": "bayesproxy.methods.loss_accuracy",
    "MeanProxySigmoidForecaster": "bayesproxy.methods.mean_proxy",
    "PCASigmoidForecaster": "bayesproxy.methods.pca_sigmoid",
    "ProxySelectionForecaster": "bayesproxy.methods.proxy_selection",
    "WeightedEnsembleForecaster": "bayesproxy.methods.weighted_ensemble",
}

__all__ = [
    *sorted(_CLASSES),
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


def __getattr__(name: str) -> Any:
    if name in _CLASSES:
        return getattr(importlib.import_module(_CLASSES[name]), name)
    raise AttributeError(f"module 'bayesproxy.methods' has no attribute {name!r}")
