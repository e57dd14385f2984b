"""The hierarchical proxy model: fit, forecast, weigh proxies, rank units, save / load.

Examples
--------
>>> from bayesproxy.model import ProxyForecaster, default_priors
>>> ProxyForecaster(target="t").name
'proxy-bayes'
>>> "loading_sd" in default_priors()
True
"""

from __future__ import annotations

from bayesproxy.model.convergence import ConvergenceReport, check_convergence
from bayesproxy.model.design import Design, DesignError, build_design
from bayesproxy.model.forecaster import ProxyForecaster
from bayesproxy.model.persistence import SCHEMA_VERSION
from bayesproxy.model.priors import PRIOR_DOCS, PriorError, default_priors, resolve_priors

__all__ = [
    "PRIOR_DOCS",
    "SCHEMA_VERSION",
    "ConvergenceReport",
    "Design",
    "DesignError",
    "PriorError",
    "ProxyForecaster",
    "build_design",
    "check_convergence",
    "default_priors",
    "resolve_priors",
]
