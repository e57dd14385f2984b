"""Compiled inner loops of the forecast: one pass over (draw, unit, proxy) instead of several.

Forecasting 10,000 new units from 1,000 posterior draws visits 10^7 (draw, unit) pairs per
proxy. In NumPy each elementwise step of the conjugate update is a pass over an array of that
size; the loops of :mod:`~bayesproxy.model.forecast_loops` fuse them (cell precision, its
contribution to the capability's precision and to precision times mean) into one pass that
stays in the CPU cache, and run the units in parallel. Each unit's sums run over the
proxies in a fixed order, so the result does not depend on the number of threads.

numba compiles those loops on first use and caches them on disk, so later processes load
them.

Examples
--------
>>> import numpy as np
>>> S, N, K = 2, 3, 4
>>> rng = np.random.default_rng(0)
>>> P, H = np.ones((S, N)), np.zeros((S, N))
>>> y, inv_j, se2 = rng.normal(size=(N, K)), np.ones((N, K)), np.zeros((N, K))
>>> psi2, sig2 = np.full((S, K), 0.5), np.full((S, K), 0.5)
>>> lam, mu = np.ones((S, K)), np.zeros((S, K))
>>> add_proxy_evidence(P, H, y, inv_j, se2, psi2, sig2, lam, mu)
>>> P[0].tolist()  # 1 + 4 proxies of precision 1
[5.0, 5.0, 5.0]
"""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

import numpy as np

__all__ = ["add_proxy_evidence", "one_factor_posterior"]

#: numba's fallback thread pool (workqueue) aborts on concurrent calls from two threads
_LOCK = threading.Lock()


def _rows(a: Any) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64)


def _cols(a: Any) -> np.ndarray:
    """(S, K) draws of per-proxy parameters as the (K, S) rows the loops read."""
    return np.ascontiguousarray(np.asarray(a, dtype=np.float64).T)


@cache
def _compiled() -> tuple[Any, Any]:
    """Return the compiled loops (numba is imported here, on first use)."""
    from bayesproxy.model import forecast_loops

    return forecast_loops.add_evidence, forecast_loops.one_factor_draws


def add_proxy_evidence(
    P: np.ndarray,
    H: np.ndarray,
    y: np.ndarray,
    inv_j: np.ndarray,
    se2: np.ndarray,
    psi2: np.ndarray,
    sig2: np.ndarray,
    lam: np.ndarray,
    mu: np.ndarray,
) -> None:
    """Add the proxies' evidence to a one-factor capability's precision ``P`` and ``H``, in place.

    Per draw ``s`` and unit ``n`` the cell precision is ``w = 1 / (psi2 + (sig2 + se2) / J)``
    and the update is ``P += sum_k lam_k^2 w_k`` and ``H += sum_k lam_k (y_k - mu_k) w_k``.

    Parameters
    ----------
    P, H : ndarray, shape (S, N)
        Precision and precision times mean of the capability (the prior's on entry).
    y, inv_j, se2 : ndarray, shape (N, K)
        Cell means, reciprocal replicate counts and squared stderrs; an unobserved cell has
        ``se2 = inf`` (its precision is then exactly 0) and a finite ``y``.
    psi2, sig2, lam, mu : ndarray, shape (S, K)
        Per draw: squared unique SDs, squared replicate-noise SDs, loadings and intercepts.
    """
    lam = _cols(lam)
    kernel = _compiled()[0]
    with _LOCK:
        kernel(
            P,
            H,
            _rows(y),
            _rows(inv_j),
            _rows(se2),
            _cols(psi2),
            _cols(sig2),
            lam * lam,
            lam,
            lam * _cols(mu),
        )


def one_factor_posterior(
    eps: np.ndarray,
    *,
    unit: dict[str, np.ndarray],
    prior: dict[str, np.ndarray],
    cells: dict[str, np.ndarray],
    measurement: dict[str, np.ndarray],
) -> np.ndarray:
    """Turn standard normal noise into draws of each unit's one-factor capability, in place.

    Per draw ``s`` and unit ``n`` the prior is ``N(mean, var)`` with
    ``mean = a_fam[f] + a_run[r] + b_fam[f] x`` and
    ``var = unit_var + new_f (fam_var + slope_var x2) + new_r run_var + no_x b_fam[f]^2``;
    the proxies add their evidence as in :func:`add_proxy_evidence`, and
    ``eps`` becomes ``theta = H / P + eps / sqrt(P)``.

    Parameters
    ----------
    eps : ndarray, shape (S, N)
        Standard normal noise; overwritten with the capability draws.
    unit : dict
        Per unit (N,): ``fam``, ``run`` (int rows of the tables below), ``x``, ``x2``,
        ``no_x``, ``new_f``, ``new_r`` (floats).
    prior : dict
        ``a_fam``, ``b_fam`` (F', S), ``a_run`` (R', S) and ``unit_var``, ``fam_var``,
        ``slope_var``, ``run_var`` (S,).
    cells : dict
        ``y``, ``inv_j``, ``se2`` (N, K) as for :func:`add_proxy_evidence`.
    measurement : dict
        ``psi2``, ``sig2``, ``lam``, ``mu`` (S, K).

    Returns
    -------
    ndarray, shape (N,)
        The posterior mean capability per unit (mean over draws of ``H / P``).
    """
    lam = _cols(measurement["lam"])
    theta_mean = np.empty(eps.shape[1])
    kernel = _compiled()[1]
    with _LOCK:
        kernel(
            eps,
            theta_mean,
            np.ascontiguousarray(unit["fam"], dtype=np.int64),
            np.ascontiguousarray(unit["run"], dtype=np.int64),
            *(_rows(unit[name]) for name in ("x", "x2", "no_x", "new_f", "new_r")),
            *(_rows(prior[name]) for name in ("a_fam", "b_fam", "a_run")),
            *(_rows(prior[name]) for name in ("unit_var", "fam_var", "slope_var", "run_var")),
            *(_rows(cells[name]) for name in ("y", "inv_j", "se2")),
            _cols(measurement["psi2"]),
            _cols(measurement["sig2"]),
            lam * lam,
            lam,
            lam * _cols(measurement["mu"]),
        )
    return theta_mean
