"""The compiled loops of :mod:`bayesproxy.model.kernels` (numba), imported on first use.

They live at module level, apart from the wrappers, so that numba's disk cache finds them
in every new process (functions defined inside another function are compiled again each
time when they call one another) and so that importing the forecaster does not import
numba. Both loops share :func:`unit_evidence`, so the conjugate update of a new table and
the capability the fit derives sum the proxies' evidence the same way.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["add_evidence", "one_factor_draws", "unit_evidence"]


@numba.njit(cache=True, nogil=True, inline="always")
def unit_evidence(n, y, inv_j, se2, psi2, sig2, lam2, lam, lam_mu):  # pragma: no cover
    """Sum unit ``n``'s evidence over proxies per draw: precision, precision times mean."""
    # The innermost loop runs over draws (independent sums, so it vectorises without
    # fastmath); each (draw, unit) sum still adds the proxies in their fixed order, so the
    # result is the same on any number of threads. Parameters come as (K, S) arrays.
    K, S = lam.shape
    p_sum = np.zeros(S)
    h_sum = np.zeros(S)
    for k in range(K):
        y_nk, inv_nk, se2_nk = y[n, k], inv_j[n, k], se2[n, k]
        for s in range(S):
            prec = 1.0 / (psi2[k, s] + (sig2[k, s] + se2_nk) * inv_nk)
            p_sum[s] += lam2[k, s] * prec
            h_sum[s] += (lam[k, s] * y_nk - lam_mu[k, s]) * prec
    return p_sum, h_sum


@numba.njit(parallel=True, cache=True, nogil=True)
def add_evidence(P, H, y, inv_j, se2, psi2, sig2, lam2, lam, lam_mu):  # pragma: no cover
    """Add every unit's evidence to ``P`` and ``H`` (S, N), units in parallel."""
    S, N = P.shape
    for n in numba.prange(N):
        p_sum, h_sum = unit_evidence(n, y, inv_j, se2, psi2, sig2, lam2, lam, lam_mu)
        for s in range(S):
            P[s, n] += p_sum[s]
            H[s, n] += h_sum[s]


@numba.njit(parallel=True, cache=True, nogil=True)
def one_factor_draws(  # pragma: no cover
    eps, theta_mean, fam, run, x, x2, no_x, new_f, new_r,
    a_fam, b_fam, a_run, unit_var, fam_var, slope_var, run_var,
    y, inv_j, se2, psi2, sig2, lam2, lam, lam_mu,
):  # fmt: skip
    """Turn ``eps`` into capability draws in place; see ``kernels.one_factor_posterior``."""
    # One pass per unit: its prior precision and mean per draw, the proxies' evidence and
    # the draw theta = m + eps / sqrt(P); the NumPy version made ~15 passes over
    # (draw, unit) arrays of 10^7 values.
    S, N = eps.shape
    for n in numba.prange(N):
        f, r = fam[n], run[n]
        p_prior = np.empty(S)
        h_prior = np.empty(S)
        for s in range(S):
            b = b_fam[f, s]
            mean = a_fam[f, s] + a_run[r, s] + b * x[n]
            var = unit_var[s] + new_f[n] * (fam_var[s] + slope_var[s] * x2[n])
            var += new_r[n] * run_var[s]
            var += no_x[n] * (b * b)
            p_prior[s] = 1.0 / var
            h_prior[s] = p_prior[s] * mean
        p_sum, h_sum = unit_evidence(n, y, inv_j, se2, psi2, sig2, lam2, lam, lam_mu)
        total = 0.0
        for s in range(S):
            precision = p_prior[s] + p_sum[s]
            m = (h_prior[s] + h_sum[s]) / precision
            total += m
            eps[s, n] = eps[s, n] / np.sqrt(precision) + m
        theta_mean[n] = total / S
