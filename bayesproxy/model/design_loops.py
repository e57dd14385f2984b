"""The compiled loop of :func:`~bayesproxy.model.design.build_design` (numba), imported on use.

A design summarises every (unit, proxy) cell of a table by its replicates: the mean and sum
of squares of the transformed, standardised scores and the mean squared standard error on
that scale. In NumPy that took some twenty passes over the (unit, proxy, replicate) array
(0.2 s of a forecast of 10,000 new units with 39 proxies and 3 replicates); here each cell
is read once. The transforms are those of ``design._transform`` (which fits the scaling),
and standard errors reach the latent scale by the delta method.

Examples
--------
>>> import numpy as np
>>> score = np.array([[[0.5, 0.7]]])  # one unit, one accuracy proxy, two replicates
>>> stderr = np.full_like(score, np.nan)
>>> mean, ss, se2, n = cell_summaries(
...     score, stderr, kind=np.array([LOGIT]), chance=np.array([0.0]), sign=np.array([1.0]),
...     center=np.array([0.0]), scale=np.array([1.0]), eps=0.02,
... )
>>> round(float(mean[0, 0]), 4), int(n[0, 0]), bool(np.isnan(se2[0, 0]))
(0.4236, 2, True)
"""

from __future__ import annotations

import math

import numba
import numpy as np

from bayesproxy.threads import for_row_blocks

__all__ = ["IDENTITY", "LOG", "LOGIT", "cell_summaries"]

#: Transform codes per proxy.
LOGIT, LOG, IDENTITY = 0, 1, 2


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _cells(  # pragma: no cover - compiled
    score, stderr, kind, chance, sign, center, scale, eps, mean, ss, se2, n
):  # fmt: skip
    # serial over a block of units: the caller runs blocks on its threads (this releases
    # the GIL); numba's own parallel loops would add seconds to the first compilation
    U, K, R = score.shape
    latent = np.empty(R)
    for i in range(U):
        for k in range(K):
            code, c, s, m0, sc = kind[k], chance[k], sign[k], center[k], scale[k]
            count = 0
            total = 0.0
            se_count = 0
            se_total = 0.0
            for j in range(R):
                v = score[i, k, j]
                if code == LOGIT:
                    r = min(max((v - c) / (1.0 - c), eps), 1.0 - eps)
                    t = math.log(r) - math.log1p(-r)
                    se = stderr[i, k, j] / (1.0 - c) / (r * (1.0 - r))
                elif code == LOG:
                    t = s * math.log(v)
                    se = stderr[i, k, j] / abs(v)
                else:
                    t = s * v
                    se = stderr[i, k, j]
                t = (t - m0) / sc
                latent[j] = t
                if math.isfinite(t):  # NaN (missing) and infinite scores leave the cell
                    count += 1
                    total += t
                    se = se / sc
                    if not math.isnan(se):
                        se_count += 1
                        se_total += se * se
            cell_mean = total / count if count > 0 else math.nan
            squares = 0.0
            for j in range(R):
                if math.isfinite(latent[j]):
                    d = latent[j] - cell_mean
                    squares += d * d
            mean[i, k] = cell_mean
            ss[i, k] = squares
            se2[i, k] = se_total / se_count if se_count > 0 else math.nan
            n[i, k] = count


def cell_summaries(
    score: np.ndarray,
    stderr: np.ndarray,
    *,
    kind: np.ndarray,
    chance: np.ndarray,
    sign: np.ndarray,
    center: np.ndarray,
    scale: np.ndarray,
    eps: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Summarise each (unit, proxy) cell over its replicates on the model's latent scale.

    Parameters
    ----------
    score, stderr : ndarray, shape (units, proxies, replicates)
        Raw scores and their standard errors (NaN where missing).
    kind : ndarray of int, shape (proxies,)
        :data:`LOGIT`, :data:`LOG` or :data:`IDENTITY`.
    chance, sign, center, scale : ndarray, shape (proxies,)
        The transform's constants (a fit's :class:`~bayesproxy.model.design.Scaling`).
    eps : float
        Accuracies are clipped to ``[eps, 1 - eps]`` of their range above chance.

    Returns
    -------
    mean, ss, se2 : ndarray of float, shape (units, proxies)
        Mean and sum of squared deviations of the finite transformed replicates (mean NaN
        where there are none), and the mean squared standard error over those whose error
        is known (NaN where none is).
    n : ndarray of int, shape (units, proxies)
        Finite transformed replicates per cell.
    """
    score = np.ascontiguousarray(score, dtype=np.float64)
    stderr = np.ascontiguousarray(stderr, dtype=np.float64)
    shape = score.shape[:2]
    mean, ss, se2 = np.empty(shape), np.empty(shape), np.empty(shape)
    n = np.empty(shape, dtype=np.int64)
    kind = np.ascontiguousarray(kind, dtype=np.int64)
    constants = [np.ascontiguousarray(a, dtype=np.float64) for a in (chance, sign, center, scale)]

    def block(rows: slice) -> None:
        _cells(
            score[rows],
            stderr[rows],
            kind,
            *constants,
            float(eps),
            mean[rows],
            ss[rows],
            se2[rows],
            n[rows],
        )

    for_row_blocks(block, shape[0])
    return mean, ss, se2, n
