"""Forecast-accuracy metrics: pure NumPy, each small enough to verify by hand.

Every function takes the forecast first and the observed value second, ignores units whose
observed value is NaN, and returns ``nan`` when too few units remain for the metric to mean
anything (instead of raising inside a long backtest).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from bayesproxy.backtest.errors import BacktestError

__all__ = [
    "POINT_METRICS",
    "crps",
    "crps_point",
    "elpd",
    "interval_coverage",
    "interval_width",
    "kendall",
    "mae",
    "pairwise_ranking_accuracy",
    "rmse",
    "spearman",
]


def _pair(pred: ArrayLike, actual: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    p = np.asarray(pred, dtype=float).ravel()
    y = np.asarray(actual, dtype=float).ravel()
    if p.shape != y.shape:
        raise BacktestError(
            f"forecast has {p.size} values but actual has {y.size}.",
            hint="pass one forecast per observed value, in the same unit order.",
        )
    keep = np.isfinite(p) & np.isfinite(y)
    return p[keep], y[keep]


def mae(pred: ArrayLike, actual: ArrayLike) -> float:
    """Mean absolute error.

    Parameters
    ----------
    pred, actual : array_like
        Point forecasts and observed values, same length.

    Returns
    -------
    float
        ``mean(|pred - actual|)``; ``nan`` when no unit has both values.

    Examples
    --------
    >>> mae([0.1, 0.5], [0.2, 0.2])
    0.2
    """
    p, y = _pair(pred, actual)
    return float(np.mean(np.abs(p - y))) if p.size else float("nan")


def rmse(pred: ArrayLike, actual: ArrayLike) -> float:
    """Root mean squared error.

    Parameters
    ----------
    pred, actual : array_like
        Point forecasts and observed values, same length.

    Returns
    -------
    float
        ``sqrt(mean((pred - actual)**2))``; ``nan`` when no unit has both values.

    Examples
    --------
    >>> rmse([0.0, 0.0], [0.3, 0.4])  # sqrt((0.09 + 0.16) / 2)
    0.3535533905932738
    """
    p, y = _pair(pred, actual)
    return float(np.sqrt(np.mean((p - y) ** 2))) if p.size else float("nan")


def _average_ranks(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """Ranks 1..n, ties sharing the mean of the ranks they span."""
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(x.size, dtype=float)
    sorted_x = x[order]
    # boundaries of runs of equal values in sorted order
    starts = np.flatnonzero(np.r_[True, sorted_x[1:] != sorted_x[:-1]])
    ends = np.r_[starts[1:], x.size]
    for s, e in zip(starts, ends, strict=True):
        ranks[order[s:e]] = (s + 1 + e) / 2.0
    return ranks


def spearman(pred: ArrayLike, actual: ArrayLike) -> float:
    """Spearman rank correlation (Pearson correlation of average ranks).

    Parameters
    ----------
    pred, actual : array_like
        Point forecasts and observed values, same length.

    Returns
    -------
    float
        In [-1, 1]; ``nan`` with fewer than 3 units or when either side is constant.

    Examples
    --------
    >>> spearman([1, 2, 3, 4], [10, 20, 40, 30])  # 1 - 6*2/(4*15)
    0.8
    """
    p, y = _pair(pred, actual)
    if p.size < 3:
        return float("nan")
    rp, ry = _average_ranks(p), _average_ranks(y)
    rp, ry = rp - rp.mean(), ry - ry.mean()
    denom = np.sqrt(np.sum(rp**2) * np.sum(ry**2))
    return float(np.sum(rp * ry) / denom) if denom > 0 else float("nan")


def kendall(pred: ArrayLike, actual: ArrayLike) -> float:
    """Kendall's tau-b (tie-corrected), by direct enumeration of pairs.

    Parameters
    ----------
    pred, actual : array_like
        Point forecasts and observed values, same length.

    Returns
    -------
    float
        ``(concordant - discordant) / sqrt((n0 - ties_pred) * (n0 - ties_actual))`` where
        ``n0`` is the number of pairs; ``nan`` with fewer than 3 units or a constant side.

    Examples
    --------
    >>> kendall([1, 2, 3, 4], [10, 20, 40, 30])  # 5 concordant, 1 discordant, 6 pairs
    0.6666666666666666
    """
    p, y = _pair(pred, actual)
    n = p.size
    if n < 3:
        return float("nan")
    i, j = np.triu_indices(n, k=1)
    sp, sy = np.sign(p[i] - p[j]), np.sign(y[i] - y[j])
    n0 = i.size
    denom = np.sqrt(float(np.count_nonzero(sp)) * float(np.count_nonzero(sy)))
    if denom == 0 or n0 == 0:
        return float("nan")
    return float(np.sum(sp * sy) / denom)


def pairwise_ranking_accuracy(pred: ArrayLike, actual: ArrayLike) -> float:
    """Share of unit pairs the forecast orders the same way as the observed values.

    Pairs tied in the observed values are skipped (there is no right order); a pair tied
    in the forecast counts one half (a coin flip would get it right half the time).

    Parameters
    ----------
    pred, actual : array_like
        Point forecasts and observed values, same length.

    Returns
    -------
    float
        In [0, 1]; 0.5 is chance; ``nan`` when no pair has distinct observed values.

    Examples
    --------
    >>> pairwise_ranking_accuracy([1, 2, 3], [1, 3, 2])  # 2 of 3 pairs right
    0.6666666666666666
    """
    p, y = _pair(pred, actual)
    i, j = np.triu_indices(p.size, k=1)
    sy = np.sign(y[i] - y[j])
    sp = np.sign(p[i] - p[j])
    keep = sy != 0
    if not np.any(keep):
        return float("nan")
    score = np.where(sp[keep] == 0, 0.5, (sp[keep] == sy[keep]).astype(float))
    return float(np.mean(score))


def _samples_pair(
    samples: ArrayLike, actual: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    s = np.asarray(samples, dtype=float)
    y = np.asarray(actual, dtype=float).ravel()
    if s.ndim != 2 or s.shape[0] != y.size:
        raise BacktestError(
            f"samples must have shape (n_units, n_samples) = ({y.size}, ...), got {s.shape}.",
            hint="pass one row of predictive draws per observed value.",
        )
    keep = np.isfinite(y) & np.all(np.isfinite(s), axis=1)
    return s[keep], y[keep]


def _central_interval(
    s: NDArray[np.float64], prob: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    if not 0 < prob < 1:
        raise BacktestError(
            f"prob must lie in (0, 1), got {prob}.", hint="e.g. prob=0.9 for a 90% interval."
        )
    lo, hi = np.quantile(s, [(1 - prob) / 2, (1 + prob) / 2], axis=1)
    return lo, hi


def interval_coverage(samples: ArrayLike | None, actual: ArrayLike, *, prob: float) -> float:
    """Share of observed values inside the central ``prob`` interval of the samples.

    Parameters
    ----------
    samples : array_like of shape (n_units, n_samples) or None
        Predictive samples; ``None`` (a method with no uncertainty) gives ``nan``.
    actual : array_like of shape (n_units,)
        Observed values.
    prob : float
        Interval mass, e.g. 0.9 for the 5%–95% quantile interval (endpoints inclusive).

    Returns
    -------
    float
        In [0, 1]; a calibrated forecaster scores close to ``prob``.

    Examples
    --------
    >>> s = [[0, 1, 2, 3, 4], [0, 1, 2, 3, 4]]
    >>> interval_coverage(s, [2.0, 5.0], prob=0.5)  # interval [1, 3] holds 2, not 5
    0.5
    """
    if samples is None:
        return float("nan")
    s, y = _samples_pair(samples, actual)
    if not y.size:
        return float("nan")
    lo, hi = _central_interval(s, prob)
    return float(np.mean((y >= lo) & (y <= hi)))


def interval_width(samples: ArrayLike | None, actual: ArrayLike, *, prob: float) -> float:
    """Mean width of the central ``prob`` interval of the samples.

    Only units with an observed value count, so width and coverage describe the same units.

    Parameters
    ----------
    samples : array_like of shape (n_units, n_samples) or None
        Predictive samples; ``None`` gives ``nan``.
    actual : array_like of shape (n_units,)
        Observed values (used only to pick the scored units).
    prob : float
        Interval mass in (0, 1).

    Returns
    -------
    float
        Mean of ``upper - lower`` over scored units.

    Examples
    --------
    >>> interval_width([[0, 1, 2, 3, 4]], [2.0], prob=0.5)  # quantiles 0.25, 0.75 -> 1, 3
    2.0
    """
    if samples is None:
        return float("nan")
    s, y = _samples_pair(samples, actual)
    if not y.size:
        return float("nan")
    lo, hi = _central_interval(s, prob)
    return float(np.mean(hi - lo))


def crps(samples: ArrayLike, actual: ArrayLike) -> float:
    """Mean continuous ranked probability score from predictive samples (lower is better).

    Uses the energy form ``CRPS(F, y) = E|X - y| - 0.5 E|X - X'|`` with both expectations
    taken over the empirical distribution of the samples (all ``m**2`` pairs, so the result
    is exactly the CRPS of the sample's empirical CDF).

    Parameters
    ----------
    samples : array_like of shape (n_units, n_samples)
        Predictive samples per unit.
    actual : array_like of shape (n_units,)
        Observed values.

    Returns
    -------
    float
        Mean CRPS over units with an observed value; ``nan`` when none has one.

    Examples
    --------
    >>> crps([[0.0, 1.0]], [0.0])  # E|X-y| = 0.5, E|X-X'| = 0.5  ->  0.5 - 0.25
    0.25
    """
    s, y = _samples_pair(samples, actual)
    if not y.size:
        return float("nan")
    m = s.shape[1]
    term1 = np.mean(np.abs(s - y[:, None]), axis=1)
    # E|X - X'| over all m^2 ordered pairs from the sorted samples in O(m log m):
    # sum_{i,j} |x_i - x_j| = 2 * sum_i (2i - m - 1) x_(i), i = 1..m
    xs = np.sort(s, axis=1)
    coef = 2 * np.arange(1, m + 1) - m - 1
    term2 = 2 * (xs @ coef) / m**2
    return float(np.mean(term1 - 0.5 * term2))


def crps_point(pred: ArrayLike, actual: ArrayLike) -> float:
    """CRPS of a point forecast, which reduces to the absolute error.

    A point forecast is a predictive distribution with all its mass at one value, for which
    ``E|X - X'| = 0`` and the CRPS equals ``|pred - y|``. That lets methods with and without
    uncertainty be ranked on one scale, and it penalises overconfidence: a point forecast
    never scores better than a well-placed spread.

    Parameters
    ----------
    pred, actual : array_like
        Point forecasts and observed values.

    Returns
    -------
    float
        The mean absolute error.

    Examples
    --------
    >>> crps_point([0.5], [0.0])
    0.5
    """
    return mae(pred, actual)


def elpd(log_density: ArrayLike | None) -> float:
    """Sum the log predictive densities of held-out targets (the ELPD).

    Parameters
    ----------
    log_density : array_like or None
        ``log p(y_i | training data)`` for each held-out unit, as computed by a method that
        has a likelihood; ``None`` (no likelihood) gives ``nan``.

    Returns
    -------
    float
        Sum over finite entries (higher is better); ``nan`` when none is finite.

    Examples
    --------
    >>> elpd([-1.0, -0.5])
    -1.5
    """
    if log_density is None:
        return float("nan")
    lp = np.asarray(log_density, dtype=float).ravel()
    lp = lp[np.isfinite(lp)]
    return float(np.sum(lp)) if lp.size else float("nan")


# metric name -> (function of (point forecast, actual), higher is better)
POINT_METRICS = {
    "mae": (mae, False),
    "rmse": (rmse, False),
    "spearman": (spearman, True),
    "kendall": (kendall, True),
    "pairwise_accuracy": (pairwise_ranking_accuracy, True),
}
