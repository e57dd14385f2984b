"""bayesproxy: Bayesian forecasting of emergent LLM abilities from proxy evaluations.

Importing the package is cheap: the public names below are loaded on first use, so the
command line and the data layer do not pay for PyMC's import unless a model is built.

Examples
--------
>>> import bayesproxy
>>> table = bayesproxy.datasets.load_example().table  # doctest: +SKIP
>>> fit = bayesproxy.ProxyForecaster(target="target").fit(table)  # doctest: +SKIP
>>> fit.forecast(prob=0.9)  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("bayesproxy")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

# public name -> module that defines it
_LAZY_ATTRIBUTES: dict[str, str] = {
    "BenchmarkTable": "bayesproxy.table",
    "read_table": "bayesproxy.io",
    "read_lm_eval": "bayesproxy.io",
    "align_checkpoints": "bayesproxy.align",
    "ProxyForecaster": "bayesproxy.model",
    "BayesproxyError": "bayesproxy.errors",
}
_LAZY_MODULES = {
    "align",
    "backtest",
    "datasets",
    "errors",
    "io",
    "methods",
    "model",
    "plots",
    "report",
    "table",
    "tokens",
}

__all__ = ["__version__", *sorted(_LAZY_ATTRIBUTES), *sorted(_LAZY_MODULES)]


def __getattr__(name: str) -> Any:
    if name in _LAZY_ATTRIBUTES:
        value = getattr(importlib.import_module(_LAZY_ATTRIBUTES[name]), name)
    elif name in _LAZY_MODULES:
        value = importlib.import_module(f"bayesproxy.{name}")
    else:
        raise AttributeError(f"module 'bayesproxy' has no attribute {name!r}")
    globals()[name] = value  # cache: later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
