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

Imported on first use (it imports numba). The loop is serial over a block of rows and
releases the GIL; blocks run on the machine's cores as threads.

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

from bayesproxy.threads import for_row_blocks

__all__ = ["row_quantiles"]


_njit = numba.njit(cache=True, nogil=True, error_model="numpy")


@_njit
def _heapsort(a):  # pragma: no cover - compiled
    # in place, O(m log m) at worst; a few lines compile in a fraction of numba's sort
    n = a.size
    for start in range(n // 2 - 1, -1, -1):
        _sift_down(a, start, n)
    for end in range(n - 1, 0, -1):
        a[0], a[end] = a[end], a[0]
        _sift_down(a, 0, end)


@_njit
def _sift_down(a, root, end):  # pragma: no cover - compiled
    while True:
        child = 2 * root + 1
        if child >= end:
            return
        if child + 1 < end and a[child] < a[child + 1]:
            child += 1
        if a[root] < a[child]:
            a[root], a[child] = a[child], a[root]
            root = child
        else:
            return


@_njit
def _quantile_rows(samples, wanted, prev, nxt, gamma, out, ok):  # pragma: no cover - compiled
    # Serial over a block of rows (the caller runs blocks on its threads; this releases the
    # GIL). wanted: the order statistics needed, ascending; prev, nxt: positions in wanted
    # of each prob's two neighbours; gamma: each prob's weight (see row_quantiles).
    N, S = samples.shape
    P = gamma.size
    W = wanted.size
    values = np.empty(W)
    ids = np.empty(S, np.int64)
    counts = np.empty(S + 1, np.int64)
    members = np.empty(S)
    for n in range(N):
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
        if hi_v == lo_v:
            for w in range(W):
                values[w] = lo_v
        else:
            # S buckets, monotone in the value: fl(x - lo) and fl(d * scale) never reverse
            # an order; a range near 0 or overflowing (scale not finite) is one bucket
            scale = S / (hi_v - lo_v)
            one = not (np.isfinite(scale) and scale > 0.0)
            counts[:] = 0
            for i in range(S):
                ids[i] = 0 if one else min(int((row[i] - lo_v) * scale), S - 1)
                counts[ids[i] + 1] += 1
            for b in range(S):  # counts[b] becomes the number of values below bucket b
                counts[b + 1] += counts[b]
            b = 0
            w = 0
            while w < W:
                while counts[b + 1] <= wanted[w]:
                    b += 1
                size = counts[b + 1] - counts[b]
                m = 0
                for i in range(S):
                    if ids[i] == b:
                        members[m] = row[i]
                        m += 1
                bucket = members[:size]
                _heapsort(bucket)
                # every wanted statistic in this bucket from one sort
                while w < W and wanted[w] < counts[b + 1]:
                    values[w] = bucket[wanted[w] - counts[b]]
                    w += 1
        for p in range(P):
            a = values[prev[p]]
            c = values[nxt[p]]
            g = gamma[p]
            diff = c - a
            # numpy's _lerp: from the nearer end
            out[n, p] = c - diff * (1.0 - g) if g >= 0.5 else a + diff * g


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
    # NumPy's "linear" method: the virtual index v = (S - 1) q, its neighbours floor(v) and
    # floor(v) + 1 (both the last value for v >= S - 1) and the weight v - floor(v)
    last = x.shape[1] - 1
    virtual = last * q
    low = np.floor(virtual)
    gamma = virtual - low
    prev = np.where(virtual >= last, last, low).astype(np.int64)
    nxt = np.where(virtual >= last, last, low + 1).astype(np.int64)
    wanted, where = np.unique(np.concatenate([prev, nxt]), return_inverse=True)
    out = np.full((x.shape[0], len(q)), np.nan)  # a row per unit: blocks are contiguous
    ok = np.zeros(x.shape[0], dtype=np.bool_)
    first, second = where[: len(q)], where[len(q) :]

    def block(rows: slice) -> None:
        _quantile_rows(x[rows], wanted, first, second, gamma, out[rows], ok[rows])

    for_row_blocks(block, x.shape[0])
    return out.T, ok
