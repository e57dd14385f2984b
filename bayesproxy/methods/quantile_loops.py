"""Quantiles of many rows of draws in one compiled pass per row (numba), as NumPy computes them.

A forecast of 10,000 units summarises 10,000 rows of 1,000 draws. NumPy's
``np.quantile(samples, probs, axis=1)`` partitions every row (about 10 us a row). Here each
row is bucketed by value instead: ``S`` buckets between the row's minimum and maximum,
counted in one pass; a wanted order statistic then lies in a known bucket, and only that
bucket's few values are sorted. Bucketing is monotone in the value, so the order statistics
are exact, and they are interpolated as NumPy's default ``"linear"`` method does (the same
floating-point operations), so the result equals ``np.quantile`` (bit for bit but for the
sign of a zero: which of ``-0.0`` and ``0.0`` lands first within a bucket is arbitrary). A row with
many values in one bucket (heavy tails) costs at most a sort of that bucket.

Imported on first use (it imports numba).

Examples
--------
>>> import numpy as np
>>> x = np.random.default_rng(0).normal(size=(3, 101))
>>> q, ok = row_quantiles(x, (0.05, 0.5, 0.95))
>>> bool(ok.all()), bool(np.array_equal(q, np.quantile(x, (0.05, 0.5, 0.95), axis=1)))
(True, True)
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np

__all__ = ["row_quantiles"]


@numba.njit(cache=True, nogil=True, inline="always")
def _order_statistics(row, ids, wanted, values, n_buckets):  # pragma: no cover - compiled
    """Write the ``wanted`` (ascending) order statistics of ``row`` into ``values``."""
    S = row.size
    counts = np.zeros(n_buckets + 1, np.int64)
    for i in range(S):
        counts[ids[i] + 1] += 1
    for b in range(n_buckets):  # counts[b] becomes the number of values below bucket b
        counts[b + 1] += counts[b]
    b = 0
    w = 0
    while w < wanted.size:
        j = wanted[w]
        while counts[b + 1] <= j:
            b += 1
        members = np.empty(counts[b + 1] - counts[b])
        m = 0
        for i in range(S):
            if ids[i] == b:
                members[m] = row[i]
                m += 1
        members.sort()
        # every wanted statistic in this bucket from one sort
        while w < wanted.size and wanted[w] < counts[b + 1]:
            values[w] = members[wanted[w] - counts[b]]
            w += 1


@numba.njit(cache=True, nogil=True, parallel=True)
def _quantiles(samples, virtual, out, ok):  # pragma: no cover - compiled
    N, S = samples.shape
    P = virtual.size
    # NumPy's "linear" method: neighbours floor(v) and floor(v) + 1 (the last value for
    # v >= S - 1), weight v - floor(v)
    prev = np.empty(P, np.int64)
    nxt = np.empty(P, np.int64)
    gamma = np.empty(P)
    for p in range(P):
        lo = np.floor(virtual[p])
        gamma[p] = virtual[p] - lo
        if virtual[p] >= S - 1:
            prev[p] = S - 1
            nxt[p] = S - 1
        else:
            prev[p] = int(lo)
            nxt[p] = int(lo) + 1
    wanted = np.unique(np.concatenate((prev, nxt)))
    for n in numba.prange(N):
        row = samples[n]
        lo_v = row[0]
        hi_v = row[0]
        finite = True
        for i in range(S):
            v = row[i]
            if not np.isfinite(v):
                finite = False
            lo_v = min(lo_v, v)
            hi_v = max(hi_v, v)
        ok[n] = finite
        if not finite:
            continue
        values = np.empty(wanted.size)
        if hi_v == lo_v:
            values[:] = lo_v
        else:
            # monotone in the value: fl(x - lo) and fl(d * scale) never reverse an order
            scale = S / (hi_v - lo_v)
            ids = np.zeros(S, np.int64)
            if (
                np.isfinite(scale) and scale > 0.0
            ):  # else (a range near 0 or overflowing) one bucket
                for i in range(S):
                    ids[i] = min(int((row[i] - lo_v) * scale), S - 1)
            _order_statistics(row, ids, wanted, values, S)
        for p in range(P):
            a = values[np.searchsorted(wanted, prev[p])]
            b = values[np.searchsorted(wanted, nxt[p])]
            g = gamma[p]
            diff = b - a
            # numpy's _lerp: from the nearer end
            out[p, n] = b - diff * (1.0 - g) if g >= 0.5 else a + diff * g


def row_quantiles(samples: np.ndarray, probs: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """``np.quantile(samples, probs, axis=1)`` for the rows whose values are all finite.

    Parameters
    ----------
    samples : ndarray, shape (N, S)
        Draws, a row per unit; ``S >= 1``.
    probs : sequence of float
        In [0, 1].

    Returns
    -------
    quantiles : ndarray, shape (len(probs), N)
        NaN-free only where ``ok``; rows with a NaN or infinite value are left for the
        caller (their entries are undefined).
    ok : ndarray of bool, shape (N,)
        Whether the row's values were all finite (and its quantiles computed).

    Raises
    ------
    ValueError
        If ``samples`` is not 2-D with at least one draw, or a prob lies outside [0, 1].
    """
    x = np.ascontiguousarray(samples, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] < 1:
        raise ValueError(f"samples must have shape (rows, draws >= 1), got {x.shape}.")
    q = np.asarray(probs, dtype=np.float64)
    if q.ndim != 1 or not np.all((q >= 0.0) & (q <= 1.0)):  # also NaN
        raise ValueError(f"probs must be a sequence of numbers in [0, 1], got {probs!r}.")
    # the virtual index as NumPy computes it, (S - 1) * q
    virtual = (x.shape[1] - 1) * q
    out = np.full((len(q), x.shape[0]), np.nan)
    ok = np.zeros(x.shape[0], dtype=np.bool_)
    from bayesproxy.model.kernels import _LOCK  # numba's workqueue: one parallel call at a time

    with _LOCK:
        _quantiles(x, virtual, out, ok)
    return out, ok
