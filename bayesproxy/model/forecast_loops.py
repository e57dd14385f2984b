"""The compiled loops of :mod:`bayesproxy.model.kernels` (numba), imported on first use.

They live at module level, apart from the wrappers, so that numba's disk cache finds them
in every new process (functions defined inside another function are compiled again each
time when they call one another) and so that importing the forecaster does not import
numba. The evidence loop and the posterior loop share :func:`unit_evidence`, so the
conjugate update of a new table and the capability the fit derives sum the proxies'
evidence the same way.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["add_evidence", "bounded_scores", "link_logits", "one_factor_gaussian", "unit_evidence"]


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
def one_factor_gaussian(  # pragma: no cover
    mean, sd, theta_mean, fam, run, x, x2, no_x, new_f, new_r,
    a_fam, b_fam, a_run, unit_var, fam_var, slope_var, run_var,
    y, inv_j, se2, psi2, sig2, lam2, lam, lam_mu,
):  # fmt: skip
    """Write each unit's capability posterior per draw, ``N(mean, sd^2)``, as rows (N, S).

    See ``kernels.one_factor_posterior``.
    """
    # One pass per unit: its prior precision and mean per draw, the proxies' evidence and
    # the posterior m = H / P, sd = 1 / sqrt(P); the NumPy version made ~15 passes over
    # (draw, unit) arrays of 10^7 values. A unit writes rows (a column of an (S, N) array
    # cost a cache miss per draw, a third of the pass).
    N, S = mean.shape
    for n in numba.prange(N):
        f, r = fam[n], run[n]
        p_prior = np.empty(S)
        h_prior = np.empty(S)
        for s in range(S):
            b = b_fam[f, s]
            m = a_fam[f, s] + a_run[r, s] + b * x[n]
            var = unit_var[s] + new_f[n] * (fam_var[s] + slope_var[s] * x2[n])
            var += new_r[n] * run_var[s]
            var += no_x[n] * (b * b)
            p_prior[s] = 1.0 / var
            h_prior[s] = p_prior[s] * m
        p_sum, h_sum = unit_evidence(n, y, inv_j, se2, psi2, sig2, lam2, lam, lam_mu)
        mean_row = mean[n]
        sd_row = sd[n]
        total = 0.0
        for s in range(S):
            precision = p_prior[s] + p_sum[s]
            m = (h_prior[s] + h_sum[s]) / precision
            total += m
            mean_row[s] = m
            sd_row[s] = 1.0 / np.sqrt(precision)
        theta_mean[n] = total / S


@numba.njit(cache=True, nogil=True, error_model="numpy")
def link_logits(  # pragma: no cover
    out, theta, theta_sd, alpha, beta, noise, delta, disc_var, extra_sd, excess
):  # fmt: skip
    """Write ``-(alpha + beta' theta + discrepancy)`` per unit and draw into ``out`` (n, S).

    The discrepancy is ``delta`` where it is finite (``delta`` has 0 rows when none is
    known), else ``sqrt(disc_var + (extra_sd * excess)^2) * noise``. When ``theta_sd`` has
    rows, ``theta`` is the mean of a one-factor capability with that SD, and its noise
    joins the discrepancy's: ``sqrt(... + (beta theta_sd)^2) * noise``, or
    ``delta + |beta theta_sd| * noise`` where the discrepancy is known.
    """
    # Serial: the caller runs blocks of units on its threads (this releases the GIL). The
    # inner loops only select, never branch, so they vectorise; the exp that follows is
    # NumPy's SIMD one (numba's calls libm once per value, several times slower).
    n_rows, S, D = theta.shape
    known = delta.shape[0] > 0
    spread = theta_sd.shape[0] > 0
    for n in range(n_rows):
        e = excess[n]
        row = out[n]
        for s in range(S):
            lin = 0.0
            for d in range(D):
                lin += theta[n, s, d] * beta[s, d]
            row[s] = alpha[s] + lin
        for s in range(S):
            sd = extra_sd[s] * e
            var = sd * sd + disc_var[s]
            cap_var = 0.0
            if spread:
                b = beta[s, 0] * theta_sd[n, s]
                cap_var = b * b
            term = np.sqrt(var + cap_var) * noise[n, s]
            if known:
                given = delta[n, s]
                # a known discrepancy replaces the link's noise, not the capability's
                if np.isfinite(given):
                    term = given + np.sqrt(cap_var) * noise[n, s] if spread else given
            row[s] = -(row[s] + term)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def bounded_scores(out, ceiling, chance):  # pragma: no cover
    """Turn ``exp(-logit)`` in ``out`` (n, S) into ``c + (u - c) / (1 + out)`` in [c, u]."""
    n_rows, S = out.shape
    for n in range(n_rows):
        row = out[n]
        for s in range(S):
            q = chance + (ceiling[s] - chance) / (1.0 + row[s])
            row[s] = min(max(q, chance), ceiling[s])
