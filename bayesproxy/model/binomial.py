"""Exact Binomial draws, compiled and parallel, that do not depend on the number of threads.

A binomial target's predictive draws a count for each of up to 10^7 (unit, posterior draw)
pairs. NumPy's generator is exact but serial (~110 ns a draw); this module draws the same
distribution with numba on every core (~40 ns a draw on one). The flattened
``(rows, draws)`` grid is cut into fixed blocks, each with its own small generator
(xoshiro256+, seeded by splitmix64 from one 64-bit seed per block taken from the caller's
``rng``), so the result depends only on the ``rng``'s state and the shapes, never on how many
threads run the blocks.

Each count is exact (up to floating-point rounding): sequential inversion of the CDF when
``n p < 10`` (NumPy's legacy ``random_binomial_inversion``) and otherwise Hörmann's BTRS
(transformed rejection with squeeze, W. Hörmann 1993, "The generation of binomial random
variates", J. Stat. Comput. Simul. 46), as in TensorFlow's ``random_binomial_op.cc``, with
``p > 1/2`` drawn as ``n - X`` for ``1 - p``. Its acceptance test reads ``log(k!)`` from a
table built once per call (Stirling's series with its tail replaces the table for
``n > 2**20``).

Examples
--------
>>> import numpy as np
>>> n_items = np.array([10, 400])
>>> q = np.array([[0.0, 1.0, 0.5], [0.25, 0.25, 0.25]])
>>> x = binomial_fractions(n_items, q, rng=np.random.default_rng(0))
>>> x.shape, x.dtype
((2, 3), dtype('float64'))
>>> x[0, :2].tolist()  # p = 0 and p = 1 are certain
[0.0, 1.0]
>>> counts = np.round(x * n_items[:, None])  # whole numbers of successes
>>> bool(np.all(counts / n_items[:, None] == x))
True
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import uint64 as _u64

from bayesproxy.model.kernels import _LOCK

__all__ = ["binomial_fractions"]

#: Elements of the flattened (rows, draws) grid per generator: fixed, so the draws do not
#: depend on the number of threads, and large enough that seeding costs nothing.
_BLOCK = 1 << 15
#: Largest ``n`` accepted: counts are handled as float64, exact up to 2**53.
_N_MAX = 1 << 53
#: Largest ``n`` whose ``log(k!)`` comes from the table (8 MiB); larger ``n`` use Stirling.
_TABLE_MAX = 1 << 20
#: ``log(k!) - Stirling(k)`` for k = 0..9, where the series below is not accurate enough.
_TAIL = np.array(
    [
        0.0810614667953272,
        0.0413406959554092,
        0.0276779256849983,
        0.02079067210376509,
        0.0166446911898211,
        0.0138761288230707,
        0.0118967099458917,
        0.0104112652619720,
        0.00925546218271273,
        0.00833056343336287,
    ]
)

# No fastmath: it would let LLVM reorder the floating-point work differently per CPU, and
# the draws are meant to be reproducible. error_model="numpy" drops the division checks.
_njit = numba.njit(cache=True, nogil=True, error_model="numpy")
# Helpers that take arrays are inlined by numba itself: a compiled call that passes an array
# increments and decrements its reference count (atomic operations), which took a third of
# the time per draw.
_inline = numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")


@_njit
def _rotl(x, k):  # pragma: no cover - compiled
    return (x << _u64(k)) | (x >> _u64(64 - k))


@_njit
def _seed(s, seed):  # pragma: no cover - compiled
    # splitmix64 spreads one seed over xoshiro's 4 words, as xoshiro's authors advise
    z = _u64(seed)
    for i in range(4):
        z += _u64(0x9E3779B97F4A7C15)
        x = z
        x = (x ^ (x >> _u64(30))) * _u64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> _u64(27))) * _u64(0x94D049BB133111EB)
        s[i] = x ^ (x >> _u64(31))


@_inline
def _uniform(s):  # pragma: no cover - compiled
    # xoshiro256+: its top 53 bits make a double in [0, 1)
    s0, s1, s2, s3 = s[0], s[1], s[2], s[3]
    result = s0 + s3
    t = s1 << _u64(17)
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = _rotl(s3, 45)
    s[0], s[1], s[2], s[3] = s0, s1, s2, s3
    # via int64: converting an int64 to double is one instruction, a uint64 is several
    return numba.int64(result >> _u64(11)) * (1.0 / 9007199254740992.0)


@_njit
def _log_factorials(size):  # pragma: no cover - compiled
    out = np.empty(size)
    for k in range(size):
        out[k] = math.lgamma(k + 1.0)
    return out


@_njit
def _stirling_tail(k):  # pragma: no cover - compiled
    # log(k!) minus Stirling's approximation (TensorFlow's stirling_approx_tail)
    if k <= 9.0:
        return _TAIL[int(k)]
    kp1sq = (k + 1.0) * (k + 1.0)
    return (1.0 / 12 - (1.0 / 360 - 1.0 / 1260 / kp1sq) / kp1sq) / (k + 1.0)


@_inline
def _inversion(nf, p, s):  # pragma: no cover - compiled
    # NumPy's legacy random_binomial_inversion: walk the CDF from 0 with the pmf's ratio,
    # restarting (with a fresh uniform) past a bound the walk almost never reaches
    q = 1.0 - p
    r = p / q
    qn = math.exp(nf * math.log1p(-p))
    npq = nf * p
    bound = min(nf, npq + 10.0 * math.sqrt(npq * q + 1.0))
    x = 0.0
    px = qn
    u = _uniform(s)
    while u > px:
        x += 1.0
        if x > bound:
            x = 0.0
            px = qn
            u = _uniform(s)
        else:
            u -= px
            px *= (nf - x + 1.0) * r / x
    return x


@_njit
def _log_ratio_stirling(k, m, nf, r):  # pragma: no cover - compiled
    # log(f(k) / f(m)) for n beyond the table: TensorFlow's form, Stirling's series with
    # its tail, which keeps the differences of huge log-factorials accurate
    return (
        (m + 0.5) * math.log((m + 1.0) / (r * (nf - m + 1.0)))
        + (nf + 1.0) * math.log((nf - m + 1.0) / (nf - k + 1.0))
        + (k + 0.5) * math.log(r * (nf - k + 1.0) / (k + 1.0))
        + _stirling_tail(m)
        + _stirling_tail(nf - m)
        - _stirling_tail(k)
        - _stirling_tail(nf - k)
    )


@_inline
def _btrs(n, nf, p, s, log_fact):  # pragma: no cover - compiled
    # Hörmann's BTRS for n p >= 10 and p <= 1/2. About half the draws are accepted by the
    # box test alone, so the exact test's per-draw parts (mode, log(p / q), log f(mode)) wait
    # until a proposal first needs them.
    spq = math.sqrt(nf * p * (1.0 - p))
    b = 1.15 + 2.53 * spq
    a = -0.0873 + 0.0248 * b + 0.01 * p
    two_a = 2.0 * a
    c = nf * p + 0.5
    v_r_b = 0.92 * b - 4.2  # v <= v_r = 0.92 - 4.2 / b, times b > 0: no division
    table = n < log_fact.size
    m = -1.0  # the mode; negative until the exact test first runs
    alpha = r = lr = h = 0.0
    while True:
        u = _uniform(s) - 0.5
        v = _uniform(s)
        us = 0.5 - abs(u)
        k = np.floor((two_a / us + b) * u + c)  # float: us = 0 gives -inf, rejected below
        if us >= 0.07 and v * b <= v_r_b:
            return k
        if k < 0.0 or k > nf:
            continue
        if m < 0.0:
            alpha = (2.83 + 5.1 / b) * spq
            m = np.floor((nf + 1.0) * p)
            r = p / (1.0 - p)
            lr = math.log(r)
            if table:
                h = log_fact[int(m)] + log_fact[n - int(m)]
        us2 = us * us
        lhs = math.log(v * alpha * us2 / (a + b * us2))
        if table:
            # log(f(k) / f(m)) = log(m! (n - m)! / (k! (n - k)!)) + (k - m) log(p / q)
            ki = int(k)
            bound = h - log_fact[ki] - log_fact[n - ki] + (k - m) * lr
        else:
            bound = _log_ratio_stirling(k, m, nf, r)
        if lhs <= bound:
            return k


@_inline
def _count(n, nf, p, s, log_fact):  # pragma: no cover - compiled
    if not p > 0.0:  # also NaN
        return 0.0
    if not p < 1.0:
        return nf
    flip = p > 0.5
    pp = 1.0 - p if flip else p  # exact for p in [1/2, 1]
    k = _inversion(nf, pp, s) if nf * pp < 10.0 else _btrs(n, nf, pp, s, log_fact)
    return nf - k if flip else k


@numba.njit(cache=True, nogil=True, error_model="numpy", parallel=True)
def _fractions(n_items, q, draws, seeds, log_fact, out):  # pragma: no cover - compiled
    # q and out are the flattened (rows, draws) grid; block b covers [b * _BLOCK, ...)
    total = q.size
    for b in numba.prange(seeds.size):
        s = np.empty(4, np.uint64)
        _seed(s, seeds[b])
        start = b * _BLOCK
        stop = min(start + _BLOCK, total)
        i = start // draws
        j = start - i * draws
        n = n_items[i]
        nf = float(n)
        for e in range(start, stop):
            out[e] = _count(n, nf, q[e], s, log_fact) / nf
            j += 1
            if j == draws and e + 1 < stop:
                j = 0
                i += 1
                n = n_items[i]
                nf = float(n)


def _as_counts(n_items: np.ndarray) -> np.ndarray:
    arr = np.asarray(n_items)
    if arr.ndim != 1:
        raise ValueError(f"n_items must be 1-D (one count per row), got shape {arr.shape}.")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr) & (arr == np.round(arr))):
            raise ValueError("n_items must hold whole numbers.")
    elif not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"n_items must be integers, got dtype {arr.dtype}.")
    if arr.size and arr.max() > _N_MAX:
        raise ValueError(f"n_items must be at most 2**53, got {arr.max()}.")
    counts = arr.astype(np.int64)
    if counts.size and counts.min() < 1:
        raise ValueError(f"n_items must be >= 1, got a minimum of {counts.min()}.")
    return counts


def binomial_fractions(
    n_items: np.ndarray, q: np.ndarray, *, rng: np.random.Generator
) -> np.ndarray:
    """Draw ``Binomial(n_items[i], q[i, s]) / n_items[i]`` for every row ``i`` and column ``s``.

    Parameters
    ----------
    n_items : ndarray of int, shape (rows,)
        Trials per row, each >= 1 (floats holding whole numbers are accepted).
    q : ndarray of float, shape (rows, draws)
        Success probabilities. ``q <= 0`` (and NaN) gives 0 and ``q >= 1`` gives 1; the
        caller clips and masks.
    rng : numpy.random.Generator
        Source of one 64-bit seed per block of the grid; it is advanced.

    Returns
    -------
    ndarray of float64, shape (rows, draws)
        The fractions of successes, ``k / n_items[i]`` with ``k`` an integer count. They
        depend only on ``rng``'s state and the shapes, not on the number of numba threads.

    Raises
    ------
    ValueError
        If ``q`` is not 2-D with one row per entry of ``n_items``, or ``n_items`` is not
        1-D, holds non-whole or non-numeric values, or a count below 1 or above 2**53.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> x = binomial_fractions(np.array([1000]), np.full((1, 20_000), 0.3), rng=rng)
    >>> bool(abs(x.mean() - 0.3) < 0.001)
    True
    """
    counts = _as_counts(n_items)
    grid = np.ascontiguousarray(q, dtype=np.float64)
    if grid.ndim != 2 or grid.shape[0] != counts.shape[0]:
        raise ValueError(
            f"q must have shape (rows, draws) with rows = len(n_items) = {counts.shape[0]}, "
            f"got shape {grid.shape}."
        )
    rows, draws = grid.shape
    out = np.empty((rows, draws))
    if out.size == 0:
        return out
    seeds = rng.integers(0, 2**63, -(-out.size // _BLOCK), dtype=np.int64)
    # log(k!) up to the largest n that the table serves (rows beyond it use Stirling)
    log_fact = _log_factorials(int(counts[counts <= _TABLE_MAX].max(initial=0)) + 1)
    with _LOCK:
        _fractions(counts, grid.reshape(-1), draws, seeds, log_fact, out.reshape(-1))
    return out
