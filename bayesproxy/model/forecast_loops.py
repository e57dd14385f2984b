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

__all__ = [
    "add_evidence",
    "bounded_scores",
    "four_units_evidence",
    "link_logits",
    "one_factor_gaussian",
    "unit_evidence",
]


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


@numba.njit(cache=True, nogil=True, inline="always")
def four_units_evidence(n0, y, inv_j, se2, psi2, sig2, lam2, lam, lam_mu, acc):  # pragma: no cover
    """:func:`unit_evidence` of units ``n0 .. n0 + 3`` into the rows of ``acc`` (8, S).

    Rows ``2 b`` and ``2 b + 1`` get unit ``n0 + b``'s precision and precision times mean,
    bitwise what :func:`unit_evidence` gives: the same sums in the same order. Four units
    share each read of the per-proxy parameters, (K, S) arrays too large for the CPU's
    nearest caches: a quarter faster than one unit at a time.
    """
    K, S = lam.shape
    acc[:] = 0.0
    p0, h0, p1, h1 = acc[0], acc[1], acc[2], acc[3]
    p2, h2, p3, h3 = acc[4], acc[5], acc[6], acc[7]
    for k in range(K):
        y0, y1, y2, y3 = y[n0, k], y[n0 + 1, k], y[n0 + 2, k], y[n0 + 3, k]
        i0, i1, i2, i3 = inv_j[n0, k], inv_j[n0 + 1, k], inv_j[n0 + 2, k], inv_j[n0 + 3, k]
        e0, e1, e2, e3 = se2[n0, k], se2[n0 + 1, k], se2[n0 + 2, k], se2[n0 + 3, k]
        for s in range(S):
            a, g, l2, lm, ls = psi2[k, s], sig2[k, s], lam2[k, s], lam_mu[k, s], lam[k, s]
            q0 = 1.0 / (a + (g + e0) * i0)
            q1 = 1.0 / (a + (g + e1) * i1)
            q2 = 1.0 / (a + (g + e2) * i2)
            q3 = 1.0 / (a + (g + e3) * i3)
            p0[s] += l2 * q0
            h0[s] += (ls * y0 - lm) * q0
            p1[s] += l2 * q1
            h1[s] += (ls * y1 - lm) * q1
            p2[s] += l2 * q2
            h2[s] += (ls * y2 - lm) * q2
            p3[s] += l2 * q3
            h3[s] += (ls * y3 - lm) * q3


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
    # One pass per four units: the proxies' evidence, then per unit its prior precision and
    # mean per draw and the posterior m = H / P, sd = 1 / sqrt(P); the NumPy version made
    # ~15 passes over (draw, unit) arrays of 10^7 values. A unit writes rows (a column of
    # an (S, N) array cost a cache miss per draw, a third of the pass).
    N, S = mean.shape
    groups = N // 4  # units in fours (see four_units_evidence), the last N % 4 one by one
    for g in numba.prange(groups + N % 4):
        acc = np.empty((8, S))
        if g < groups:
            n0, width = 4 * g, 4
            four_units_evidence(n0, y, inv_j, se2, psi2, sig2, lam2, lam, lam_mu, acc)
        else:
            n0, width = 4 * groups + (g - groups), 1
            p_one, h_one = unit_evidence(n0, y, inv_j, se2, psi2, sig2, lam2, lam, lam_mu)
            acc[0] = p_one
            acc[1] = h_one
        for b in range(width):
            n = n0 + b
            f, r = fam[n], run[n]
            p_sum, h_sum = acc[2 * b], acc[2 * b + 1]
            mean_row = mean[n]
            sd_row = sd[n]
            total = 0.0
            for s in range(S):
                bf = b_fam[f, s]
                m = a_fam[f, s] + a_run[r, s] + bf * x[n]
                var = unit_var[s] + new_f[n] * (fam_var[s] + slope_var[s] * x2[n])
                var += new_r[n] * run_var[s]
                var += no_x[n] * (bf * bf)
                p_prior = 1.0 / var
                precision = p_prior + p_sum[s]
                m = (p_prior * m + h_sum[s]) / precision
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
