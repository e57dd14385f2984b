"""Token weightings and the instance / task scores built from per-token statistics.

An instance (one expert solution) scores the weighted mean of a statistic over its last
``last_n`` scored tokens; a task scores the mean over instances, with a standard error.
Token frequencies come from the expert corpus itself (the ids being scored) unless given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from bayesproxy.tokens.errors import TokenInputError
from bayesproxy.tokens.statistics import HIGHER_IS_BETTER, STATISTICS

__all__ = [
    "ENTROPY_FLOOR",
    "WEIGHTINGS",
    "instance_scores",
    "metric_name",
    "task_scores",
    "token_frequencies",
    "token_weights",
]

WEIGHTINGS = (
    "uniform",
    "p",
    "one_minus_p",
    "entropy",
    "inverse_entropy",
    "frequency",
    "inverse_frequency",
)
# inverse-entropy weights are 1 / (entropy + floor): without a floor one near-certain token
# would take the whole weight of its instance
ENTROPY_FLOOR = 1e-3


def metric_name(statistic: str, weighting: str) -> str:
    """Return the task name a token metric carries in a benchmark table.

    Examples
    --------
    >>> metric_name("top5", "inverse_frequency")
    'tokens.top5.inverse_frequency'
    """
    return f"tokens.{statistic}.{weighting}"


def _scored(stats: Mapping[str, np.ndarray]) -> np.ndarray:
    if "cross_entropy" not in stats:
        raise TokenInputError(
            f"token statistics lack 'cross_entropy' (have {sorted(stats)}).",
            "pass the mapping returned by token_statistics(...).",
        )
    # cross-entropy is NaN exactly at the tokens token_statistics did not score
    return ~np.isnan(np.asarray(stats["cross_entropy"], dtype=np.float64))


def token_frequencies(
    expert_ids: Any, *, mask: Any = None, vocab_size: int | None = None
) -> np.ndarray:
    """Count how often each token id occurs in the expert corpus.

    Parameters
    ----------
    expert_ids : array_like of int
        Expert token ids, any shape.
    mask : array_like of bool, optional
        True where a token belongs to the corpus (e.g. solution tokens, not padding).
    vocab_size : int, optional
        Length of the result (at least the largest id + 1).

    Returns
    -------
    numpy.ndarray of int64
        ``counts[v]`` = occurrences of token ``v``.

    Examples
    --------
    >>> token_frequencies([[3, 1, 3], [0, 3, -100]], mask=[[1, 1, 1], [1, 1, 0]])
    array([1, 1, 0, 3])
    """
    ids = np.asarray(expert_ids)
    keep = np.ones(ids.shape, bool) if mask is None else np.asarray(mask, dtype=bool)
    if keep.shape != ids.shape:
        raise TokenInputError(
            f"mask has shape {keep.shape} but expert_ids has shape {ids.shape}.",
            "pass one boolean per token, shaped like expert_ids.",
        )
    values = ids[keep].astype(np.int64)
    if values.size and values.min() < 0:
        raise TokenInputError(
            f"negative token ids in the expert corpus (e.g. {values[values < 0][:3]}).",
            "mask padding positions (mask=...) before counting frequencies.",
        )
    return np.bincount(values, minlength=vocab_size or 0)


def token_weights(
    stats: Mapping[str, np.ndarray],
    weighting: str,
    *,
    expert_ids: Any = None,
    frequencies: Any = None,
) -> np.ndarray:
    """Per-token weights for one weighting scheme.

    Parameters
    ----------
    stats : mapping
        The result of :func:`~bayesproxy.tokens.token_statistics`.
    weighting : str
        One of ``uniform``, ``p`` (the expert token's probability), ``one_minus_p``,
        ``entropy`` (normalised), ``inverse_entropy`` (``1 / (entropy + 1e-3)``),
        ``frequency`` and ``inverse_frequency`` (the expert token's count in the corpus,
        and its reciprocal).
    expert_ids : array_like of int, optional
        The expert ids, shaped like the statistics; needed for the frequency weightings.
    frequencies : array_like, optional
        Token counts indexed by id; default: counted from ``expert_ids`` at scored tokens.

    Returns
    -------
    numpy.ndarray
        Non-negative weights shaped like the statistics, NaN at unscored tokens.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesproxy.tokens import token_statistics, token_weights
    >>> ids = np.array([0, 0, 1])
    >>> stats = token_statistics(np.zeros((3, 4)), ids)
    >>> token_weights(stats, "inverse_frequency", expert_ids=ids)
    array([0.5, 0.5, 1. ])
    """
    scored = _scored(stats)
    with np.errstate(over="ignore"):
        if weighting == "uniform":
            weights = np.ones(scored.shape)
        elif weighting in ("p", "one_minus_p"):
            p = np.exp(-np.asarray(stats["cross_entropy"], dtype=np.float64))
            weights = p if weighting == "p" else 1.0 - p
        elif weighting in ("entropy", "inverse_entropy"):
            h = np.asarray(stats["entropy"], dtype=np.float64)
            weights = h if weighting == "entropy" else 1.0 / (h + ENTROPY_FLOOR)
        elif weighting in ("frequency", "inverse_frequency"):
            if expert_ids is None:
                raise TokenInputError(
                    f"weighting {weighting!r} needs the expert token ids.",
                    "pass expert_ids=... (the ids given to token_statistics).",
                )
            ids = np.asarray(expert_ids)
            if ids.shape != scored.shape:
                raise TokenInputError(
                    f"expert_ids has shape {ids.shape} but the statistics have shape "
                    f"{scored.shape}.",
                    "pass the same expert_ids that were given to token_statistics.",
                )
            counts = (
                token_frequencies(ids, mask=scored)
                if frequencies is None
                else np.asarray(frequencies, dtype=np.float64)
            )
            safe_ids = np.where(scored, ids, 0).astype(np.int64)
            if scored.any() and safe_ids[scored].max() >= counts.size:
                raise TokenInputError(
                    f"frequencies has {counts.size} entries but expert ids reach "
                    f"{safe_ids[scored].max()}.",
                    "count frequencies over a vocabulary that covers every expert id.",
                )
            count = np.asarray(counts, dtype=np.float64)[safe_ids] if counts.size else 0.0
            if np.any(scored & (count <= 0)):
                raise TokenInputError(
                    "some scored expert tokens have frequency 0 in the given frequencies.",
                    "count frequencies over a corpus that includes the scored tokens "
                    "(or leave frequencies=None to count them from expert_ids).",
                )
            weights = count if weighting == "frequency" else 1.0 / np.where(scored, count, 1)
        else:
            raise TokenInputError(
                f"unknown weighting {weighting!r}.",
                f"choose one of {list(WEIGHTINGS)}.",
            )
    return np.where(scored, weights, np.nan)


def _last_n(scored: np.ndarray, last_n: int | None) -> np.ndarray:
    if last_n is None:
        return scored
    if last_n < 1:
        raise TokenInputError(
            f"last_n must be a positive number of tokens or None; got {last_n}.",
            "use e.g. last_n=1000 (the default) or None for every token.",
        )
    # how many scored tokens lie at or after each position, counting from the end
    from_end = np.cumsum(scored[..., ::-1], axis=-1)[..., ::-1]
    return scored & (from_end <= last_n)


def instance_scores(
    stats: Mapping[str, np.ndarray],
    *,
    weighting: str = "uniform",
    expert_ids: Any = None,
    frequencies: Any = None,
    last_n: int | None = 1000,
    statistics: Sequence[str] = STATISTICS,
) -> dict[str, np.ndarray]:
    """Weighted mean of each statistic over the last scored tokens of each instance.

    Parameters
    ----------
    stats : mapping
        The result of :func:`~bayesproxy.tokens.token_statistics`, shaped
        (..., tokens): the last axis holds one instance's tokens.
    weighting : str, default "uniform"
        See :func:`token_weights`.
    expert_ids, frequencies
        For the frequency weightings, see :func:`token_weights`.
    last_n : int or None, default 1000
        Only the last ``last_n`` scored tokens of each instance count; None: all. Tokens
        of weight 0 take no part.
    statistics : sequence of str
        Which statistics to aggregate.

    Returns
    -------
    dict of str to numpy.ndarray
        Shape (...) per statistic; NaN for an instance with no (weighted) tokens, and for
        ``wrong_confidence`` when every token of the instance was top-1.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesproxy.tokens import instance_scores, token_statistics
    >>> logits = np.log(np.array([[[0.7, 0.3], [0.4, 0.6], [0.5, 0.5]]]))
    >>> stats = token_statistics(logits, np.array([[0, 0, 1]]))
    >>> instance_scores(stats, last_n=2, statistics=["top1"])["top1"]
    array([0.5])
    """
    scored = _scored(stats)
    used = _last_n(scored, last_n)
    weights = token_weights(stats, weighting, expert_ids=expert_ids, frequencies=frequencies)
    out: dict[str, np.ndarray] = {}
    for name in statistics:
        if name not in stats:
            raise TokenInputError(
                f"statistic {name!r} is not among the token statistics {sorted(stats)}.",
                f"choose from {list(STATISTICS)}.",
            )
        values = np.asarray(stats[name], dtype=np.float64)
        # a token of weight 0 takes no part (even with infinite cross-entropy, p = 0)
        take = used & ~np.isnan(values) & (np.nan_to_num(weights) > 0)
        w = np.where(take, weights, 0.0)
        total = w.sum(axis=-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            weighted = np.where(take, w * np.where(take, values, 0.0), 0.0).sum(axis=-1)
            out[name] = np.where(total > 0, weighted / total, np.nan)
    return out


def task_scores(
    stats: Mapping[str, np.ndarray],
    *,
    expert_ids: Any = None,
    weightings: Sequence[str] = WEIGHTINGS,
    statistics: Sequence[str] = STATISTICS,
    frequencies: Any = None,
    last_n: int | None = 1000,
) -> pd.DataFrame:
    """Task scores: the mean instance score of each statistic under each weighting.

    Parameters
    ----------
    stats : mapping
        Token statistics shaped (instances..., tokens); every leading position is one
        instance (one expert solution).
    expert_ids : array_like of int, optional
        Needed for the frequency weightings (dropped from the default when absent).
    weightings, statistics : sequence of str
        Which combinations to score.
    frequencies : array_like, optional
        Token counts; default: counted from the scored expert tokens.
    last_n : int or None, default 1000
        Tokens per instance that count (the last ones).

    Returns
    -------
    pandas.DataFrame
        One row per (statistic, weighting): ``task`` (see :func:`metric_name`),
        ``statistic``, ``weighting``, ``score`` (mean over instances with a score),
        ``stderr`` (standard deviation over instances / sqrt(n), NaN for n < 2),
        ``n_instances`` and ``higher_is_better``.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesproxy.tokens import task_scores, token_statistics
    >>> rng = np.random.default_rng(0)
    >>> ids = rng.integers(0, 50, size=(4, 16))
    >>> stats = token_statistics(rng.normal(size=(4, 16, 50)), ids)
    >>> frame = task_scores(stats, expert_ids=ids, weightings=["uniform"])
    >>> frame.set_index("task").loc["tokens.top5.uniform", "n_instances"]
    np.int64(4)
    """
    if expert_ids is None and weightings is WEIGHTINGS:
        weightings = [w for w in WEIGHTINGS if "frequency" not in w]
    rows = []
    for weighting in weightings:
        scores = instance_scores(
            stats,
            weighting=weighting,
            expert_ids=expert_ids,
            frequencies=frequencies,
            last_n=last_n,
            statistics=statistics,
        )
        for name in statistics:
            values = scores[name].reshape(-1)
            values = values[~np.isnan(values)]
            n = values.size
            rows.append(
                {
                    "task": metric_name(name, weighting),
                    "statistic": name,
                    "weighting": weighting,
                    "score": float(values.mean()) if n else np.nan,
                    "stderr": float(values.std(ddof=1) / np.sqrt(n)) if n > 1 else np.nan,
                    "n_instances": n,
                    "higher_is_better": HIGHER_IS_BETTER[name],
                }
            )
    return pd.DataFrame(rows)
