"""Ranks of pooled draws, ties averaged, and of their distances from the median (numba).

The convergence gate rank-normalises every sampled quantity twice (Vehtari et al. 2021):
the draws, and their absolute distances from the median ("folded"). With NumPy that is an
argsort per quantity and version, and three passes over the sorted draws to average the
ranks of ties. Given one argsort of the draws, these loops assign the averaged ranks in
one pass per row, and the folded ranks without a second sort: below the median the
distances grow as the sorted draws are walked down, above it as they are walked up, so
merging the two walks orders them. The ranks are those of ``scipy.stats.rankdata``
(method ``"average"``), returned doubled (``2 * rank - 2``) so that they stay integers.

Imported on first use (it imports numba). The loops release the GIL.

Examples
--------
>>> import numpy as np
>>> x = np.array([[3.0, 1.0, 2.0, 2.0]])
>>> order = np.argsort(x, axis=1)
>>> twice_ranks(x, order).tolist()  # ranks 4, 1, 2.5, 2.5
[[6, 0, 3, 3]]
>>> folded_twice_ranks(x, order, np.array([2.0])).tolist()  # |x - 2| = 1, 1, 0, 0
[[5, 5, 1, 1]]
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["folded_twice_ranks", "twice_ranks"]

_njit = numba.njit(cache=True, nogil=True, error_model="numpy")


@_njit
def _twice_ranks(values, order, out):  # pragma: no cover - compiled
    q, n = values.shape
    for i in range(q):
        start = 0
        while start < n:
            value = values[i, order[i, start]]
            end = start
            while end + 1 < n and values[i, order[i, end + 1]] == value:
                end += 1
            for p in range(start, end + 1):  # a tie group shares the mean of its ranks
                out[i, order[i, p]] = start + end
            start = end + 1


@_njit
def _folded_twice_ranks(values, order, median, merged, out):  # pragma: no cover - compiled
    q, n = values.shape
    for i in range(q):
        m = median[i]
        # the sorted positions below the median (walked down) and from it (walked up)
        up = 0
        while up < n and values[i, order[i, up]] < m:
            up += 1
        down = up - 1
        for p in range(n):  # merge the two walks by distance from the median
            take_up = down < 0 or (
                up < n and abs(values[i, order[i, up]] - m) <= abs(values[i, order[i, down]] - m)
            )
            if take_up:
                merged[p] = order[i, up]
                up += 1
            else:
                merged[p] = order[i, down]
                down -= 1
        start = 0
        while start < n:
            distance = abs(values[i, merged[start]] - m)
            end = start
            while end + 1 < n and abs(values[i, merged[end + 1]] - m) == distance:
                end += 1
            for p in range(start, end + 1):
                out[i, merged[p]] = start + end
            start = end + 1


def twice_ranks(values: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Twice the average rank minus 2 of each value within its row.

    Parameters
    ----------
    values : ndarray, shape (rows, n)
        Finite values.
    order : ndarray of int, shape (rows, n)
        ``np.argsort(values, axis=1)``.

    Returns
    -------
    ndarray of int64, shape (rows, n)
        ``2 * rank - 2``, ranks from 1, ties given the mean of their ranks.
    """
    values = np.ascontiguousarray(values, dtype=np.float64)
    order = np.ascontiguousarray(order, dtype=np.int64)
    out = np.empty(values.shape, dtype=np.int64)
    _twice_ranks(values, order, out)
    return out


def folded_twice_ranks(values: np.ndarray, order: np.ndarray, median: np.ndarray) -> np.ndarray:
    """:func:`twice_ranks` of ``abs(values - median)``, from the order of ``values``.

    Parameters
    ----------
    values : ndarray, shape (rows, n)
        Finite values.
    order : ndarray of int, shape (rows, n)
        ``np.argsort(values, axis=1)``.
    median : ndarray, shape (rows,)
        Each row's median (any centre gives the ranks of the distances from it).

    Returns
    -------
    ndarray of int64, shape (rows, n)
    """
    values = np.ascontiguousarray(values, dtype=np.float64)
    order = np.ascontiguousarray(order, dtype=np.int64)
    median = np.ascontiguousarray(median, dtype=np.float64)
    out = np.empty(values.shape, dtype=np.int64)
    merged = np.empty(values.shape[1], dtype=np.int64)
    _folded_twice_ranks(values, order, median, merged, out)
    return out
