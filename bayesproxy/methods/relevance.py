"""Relevance and robustness of candidate proxy tasks (the selection statistics of seed 1).

*Relevance* of a candidate task to the target is the correlation (Pearson, Spearman or
Kendall) between the candidate's performance *differences* and the target's performance
differences across pairs of models. *Robustness* is how little the candidate moves across
replicates (seeds / data variants) of one configuration compared with how much it varies
between units: the share of its variance not due to run-to-run noise,
``1 - mean within-unit variance / between-unit variance``, clipped to [0, 1] (the
*stability* of the Bayesian model); the evaluation standard error stands in for the
within-unit SD where there are no replicates.

Examples
--------
>>> import numpy as np
>>> pairs = model_pairs(3)
>>> pairs.tolist()
[[0, 1], [0, 2], [1, 2], [1, 0], [2, 0], [2, 1]]
>>> pair_differences(np.array([0.1, 0.4, 0.9]), pairs).round(2).tolist()
[0.3, 0.8, 0.5, -0.3, -0.8, -0.5]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from bayesproxy.methods.base import MethodInputError

__all__ = [
    "RELEVANCE_METRICS",
    "model_pairs",
    "pair_differences",
    "relevance_scores",
    "robustness_scores",
]

RELEVANCE_METRICS: tuple[str, ...] = ("pearson", "spearman", "kendall")


def model_pairs(
    n_units: int,
    *,
    groups: np.ndarray | None = None,
    source: np.ndarray | None = None,
    symmetric: bool = True,
) -> np.ndarray:
    """Index pairs ``(i, j)`` of units whose score differences ``x_j - x_i`` are compared.

    Parameters
    ----------
    n_units : int
        Number of units.
    groups : ndarray, optional
        A label per unit (e.g. the training run): only pairs within one group are kept, e.g.
        early and late checkpoints of one run.
    source : ndarray, optional
        The original unit each row stands for (bootstrap resamples repeat units): pairs of a
        unit with a copy of itself carry no information and are dropped.
    symmetric : bool, default True
        Keep both orientations of each pair, so the correlations do not depend on the order
        of the units in the table.

    Returns
    -------
    ndarray of int, shape (n_pairs, 2)

    Examples
    --------
    >>> model_pairs(4, groups=np.array(["a", "a", "b", "b"]), symmetric=False).tolist()
    [[0, 1], [2, 3]]
    """
    i, j = np.triu_indices(n_units, k=1)
    keep = np.ones(len(i), dtype=bool)
    if groups is not None:
        groups = np.asarray(groups)
        keep &= groups[i] == groups[j]
    if source is not None:
        source = np.asarray(source)
        keep &= source[i] != source[j]
    pairs = np.column_stack([i[keep], j[keep]])
    if symmetric:
        pairs = np.vstack([pairs, pairs[:, ::-1]])
    return pairs


def pair_differences(values: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Differences ``values[j] - values[i]`` for every pair ``(i, j)``.

    Parameters
    ----------
    values : ndarray, shape (n_units,) or (n_units, n_tasks)
        Scores per unit (and task).
    pairs : ndarray of int, shape (n_pairs, 2)
        From :func:`model_pairs` or given by the user.

    Returns
    -------
    ndarray, shape (n_pairs,) or (n_pairs, n_tasks)

    Examples
    --------
    >>> pair_differences(np.array([1.0, 3.0]), np.array([[0, 1]])).tolist()
    [2.0]
    """
    values = np.asarray(values, dtype=float)
    pairs = np.asarray(pairs, dtype=int).reshape(-1, 2)
    return values[pairs[:, 1]] - values[pairs[:, 0]]


def _correlation(
    a: np.ndarray, b: np.ndarray, metric: str, b_ranks: np.ndarray | None = None
) -> float:
    keep = np.isfinite(a) & np.isfinite(b)
    full = bool(keep.all())
    a, b = a[keep], b[keep]
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return np.nan
    if metric == "pearson":
        return float(np.corrcoef(a, b)[0, 1])
    if metric == "spearman":
        # the target's ranks are shared by every task observed on all pairs
        rb = b_ranks if full and b_ranks is not None else stats.rankdata(b)
        return float(np.corrcoef(stats.rankdata(a), rb)[0, 1])
    return float(stats.kendalltau(a, b).statistic)


def relevance_scores(
    proxies: pd.DataFrame,
    target: np.ndarray,
    pairs: np.ndarray,
    *,
    metrics: Sequence[str] = RELEVANCE_METRICS,
) -> pd.DataFrame:
    """Correlations of each proxy's pair differences with the target's pair differences.

    Parameters
    ----------
    proxies : pandas.DataFrame
        Units × candidate tasks (oriented so that higher is better).
    target : ndarray, shape (n_units,)
        The target's score per unit.
    pairs : ndarray of int, shape (n_pairs, 2)
        Unit index pairs; pairs with a missing score on either side are dropped per task.
    metrics : sequence of str
        Any of ``"pearson"``, ``"spearman"``, ``"kendall"``.

    Returns
    -------
    pandas.DataFrame
        Index: task; one column per metric and ``n_pairs`` (the pairs each task used).

    Examples
    --------
    >>> proxies = pd.DataFrame({"p": [0.1, 0.2, 0.4, 0.3]})
    >>> target = np.array([0.0, 0.1, 0.5, 0.2])
    >>> pairs = np.array([[0, 1], [1, 2], [2, 3]])
    >>> relevance_scores(proxies, target, pairs)["kendall"].round(3).tolist()
    [1.0]
    """
    unknown = [m for m in metrics if m not in RELEVANCE_METRICS]
    if unknown:
        raise MethodInputError(
            f"unknown relevance metric(s) {unknown}.",
            hint=f"choose from {list(RELEVANCE_METRICS)}.",
        )
    d_target = pair_differences(np.asarray(target, dtype=float), pairs)
    d_proxy = pair_differences(proxies.to_numpy(dtype=float), pairs)
    target_ranks = stats.rankdata(d_target) if np.isfinite(d_target).all() else None
    rows = {}
    for k, task in enumerate(proxies.columns):
        column = d_proxy[:, k]
        row = {m: _correlation(column, d_target, m, target_ranks) for m in metrics}
        row["n_pairs"] = int(np.sum(np.isfinite(column) & np.isfinite(d_target)))
        rows[task] = row
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=[*metrics, "n_pairs"])
    frame.index.name = "task"
    return frame


def robustness_scores(
    means: pd.DataFrame,
    *,
    replicate_sd: pd.DataFrame | None = None,
    stderr: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Replicate consistency per task: ``1 - mean within-unit var / between-unit var``.

    Parameters
    ----------
    means : pandas.DataFrame
        Units × tasks, the replicate mean per unit.
    replicate_sd : pandas.DataFrame, optional
        Units × tasks, the SD across replicates (NaN with fewer than two).
    stderr : pandas.DataFrame, optional
        Units × tasks, the evaluation standard error; used for tasks with no replicates.

    Returns
    -------
    pandas.DataFrame
        Index: task; columns ``robustness`` (in [0, 1], NaN when neither replicates nor
        standard errors are known), ``within_sd``, ``between_sd`` and ``source``
        (``"replicates"``, ``"stderr"`` or ``"unknown"``).

    Examples
    --------
    >>> means = pd.DataFrame({"t": [0.2, 0.4, 0.6]})
    >>> sd = pd.DataFrame({"t": [0.02, 0.02, 0.02]})
    >>> robustness_scores(means, replicate_sd=sd)["robustness"].round(3).tolist()
    [0.99]
    """
    rows = {}
    for task in means.columns:
        level = means[task].to_numpy(float)
        level = level[np.isfinite(level)]
        between = float(np.std(level, ddof=1)) if len(level) >= 2 else np.nan
        within, source = np.nan, "unknown"
        for frame, label in ((replicate_sd, "replicates"), (stderr, "stderr")):
            if frame is None or task not in frame.columns:
                continue
            values = frame[task].to_numpy(float)
            if np.isfinite(values).any():
                within, source = float(np.sqrt(np.nanmean(values**2))), label
                break
        if np.isfinite(within) and between > 0:
            robust = float(np.clip(1.0 - (within / between) ** 2, 0.0, 1.0))
        elif np.isfinite(within):
            robust = 0.0  # no spread between units: nothing but noise
        else:
            robust = np.nan
        rows[task] = {
            "robustness": robust,
            "within_sd": within,
            "between_sd": between,
            "source": source,
        }
    frame = pd.DataFrame.from_dict(
        rows, orient="index", columns=["robustness", "within_sd", "between_sd", "source"]
    )
    frame.index.name = "task"
    return frame
