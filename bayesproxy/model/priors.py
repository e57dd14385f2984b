"""Default priors of the hierarchical proxy model and the rules for overriding them.

Priors are plain data (a dict of floats) so they can be stored in a fit's provenance and
compared across fits. Every scale refers to a standardised quantity: proxies are
standardised per task on the training units, log compute is standardised, and the latent
capability has unit residual variance, so the defaults are weakly informative for any
benchmark table.

Examples
--------
>>> from bayesproxy.model.priors import resolve_priors
>>> resolve_priors({"beta_sd": 1.0})["beta_sd"]
1.0
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from bayesproxy.errors import BayesproxyError

__all__ = ["PRIOR_DOCS", "PriorError", "default_priors", "priors_to_json", "resolve_priors"]

#: Each prior's meaning (the model card repeats these).
PRIOR_DOCS: dict[str, str] = {
    "component_sd": "Gamma prior mean of each SD of the capability's hierarchy (one factor:"
    " the mean slope on compute and the family, run and unit SDs; in units of a mean loading"
    " of 1 on the standardised proxies)",
    "component_sd_shape": "Gamma shape of those SDs (2: zero-avoiding, density rising from 0)",
    "variance_share_concentration": "Dirichlet concentration of the split of the capability's"
    " unit variance between compute, family, run and unit deviations (several factors)",
    "family_slope_spread": "HalfNormal scale of the relative spread of family slopes on log"
    " compute around the population slope",
    "proxy_intercept_sd": "Normal scale of the task intercepts mu_k (standardised scale)",
    "loading_sd": "Normal scale of the loadings lambda_k (one factor: of their deviations"
    " from their mean, which is fixed at 1)",
    "unique_sd": "HalfNormal scale of the task-specific (unaligned) SD psi_k",
    "noise_log_mu": "Normal mean of the population log replicate-noise SD",
    "noise_log_mu_sd": "Normal SD of the population log replicate-noise SD",
    "noise_log_sd": "HalfNormal scale of the spread of log sigma_k across tasks",
    "alpha_sd": "Normal scale of the target link intercept at the mean capability of the units"
    " with an observed target",
    "beta_sd": "HalfNormal (1 factor) or Normal scale of the target link slopes beta",
    "ceiling": "fixed target ceiling u_T in (chance, 1]; NaN lets the model learn it",
    "ceiling_a": "Beta(a, b) prior on (u_T - c_T) / (1 - c_T) when the ceiling is learned",
    "ceiling_b": "see ceiling_a",
    "discrepancy_sd": "HalfNormal scale of the SD of the per-unit link discrepancy (logit)",
    "concentration_log_mu": "Normal mean of log kappa, the Beta measurement concentration",
    "concentration_log_sd": "Normal SD of log kappa",
    "extrapolation_scale": "extra link SD per training SD of distance beyond the training"
    " units, as a share of how far the link moves per SD (>= 0.61 keeps 90% intervals from"
    " collapsing as the sigmoid saturates)",
}


def default_priors() -> dict[str, float]:
    """Return a fresh dict of the default priors.

    Returns
    -------
    dict of str to float
        Keys and meanings in :data:`PRIOR_DOCS`.

    Examples
    --------
    >>> p = default_priors()
    >>> p["loading_sd"], p["extrapolation_scale"]
    (1.0, 0.75)
    """
    return {
        "component_sd": 0.35,
        "component_sd_shape": 2.0,
        "variance_share_concentration": 1.0,
        "family_slope_spread": 0.3,
        "proxy_intercept_sd": 1.0,
        "loading_sd": 1.0,
        "unique_sd": 0.5,
        "noise_log_mu": math.log(0.15),
        "noise_log_mu_sd": 1.0,
        "noise_log_sd": 0.5,
        "alpha_sd": 2.5,
        "beta_sd": 2.5,
        "ceiling": math.nan,
        "ceiling_a": 9.0,
        "ceiling_b": 1.0,
        "discrepancy_sd": 0.5,
        "concentration_log_mu": math.log(300.0),
        "concentration_log_sd": 1.0,
        "extrapolation_scale": 0.75,
    }


class PriorError(BayesproxyError, ValueError):
    """Priors that are unknown or out of range."""


def resolve_priors(priors: Mapping[str, Any] | None = None) -> dict[str, float]:
    """Merge user priors over :func:`default_priors` and check them.

    Parameters
    ----------
    priors : mapping, optional
        Keys of :data:`PRIOR_DOCS` and float values; the rest keep their defaults.

    Returns
    -------
    dict of str to float

    Raises
    ------
    PriorError
        On an unknown key, a non-numeric value, a non-positive scale, or a ceiling outside
        (0, 1].

    Examples
    --------
    >>> resolve_priors({"ceiling": 1.0})["ceiling"]
    1.0
    """
    merged = default_priors()
    for key, value in dict(priors or {}).items():
        if key not in merged:
            import difflib

            close = difflib.get_close_matches(key, list(merged), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known priors: {sorted(merged)}"
            raise PriorError(f"unknown prior {key!r}.\nHint: {hint}")
        if value is None and key == "ceiling":  # JSON null: learn the ceiling
            merged[key] = math.nan
            continue
        try:
            merged[key] = float(value)
        except (TypeError, ValueError):
            raise PriorError(
                f"prior {key!r} must be a number, got {value!r}.\nHint: pass a float."
            ) from None
    for key, value in merged.items():
        if key in {"ceiling", "noise_log_mu", "concentration_log_mu"}:
            continue
        if not (math.isfinite(value) and value > 0) and key != "extrapolation_scale":
            raise PriorError(
                f"prior {key!r} must be a positive finite number, got {value!r}.\n"
                "Hint: scales and shape parameters are strictly positive."
            )
        if key == "extrapolation_scale" and not (math.isfinite(value) and value >= 0):
            raise PriorError(
                f"prior 'extrapolation_scale' must be >= 0, got {value!r}.\n"
                "Hint: 0 turns off the widening of intervals beyond the training units."
            )
    ceiling = merged["ceiling"]
    if not math.isnan(ceiling) and not 0.0 < ceiling <= 1.0:
        raise PriorError(
            f"prior 'ceiling' must lie in (0, 1] (or be NaN to learn it), got {ceiling!r}.\n"
            "Hint: the ceiling is the best score the target can reach, e.g. 1.0."
        )
    return merged


def priors_to_json(priors: Mapping[str, float]) -> str:
    """Serialise priors as strict JSON (a learned ceiling, NaN, becomes ``null``).

    Examples
    --------
    >>> priors_to_json({"ceiling": math.nan, "beta_sd": 2.5})
    '{"ceiling": null, "beta_sd": 2.5}'
    """
    import json

    return json.dumps({k: (None if math.isnan(v) else v) for k, v in priors.items()})
