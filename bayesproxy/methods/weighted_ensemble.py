"""Alignment / stability weighted ensemble of proxy tasks (seed 2, Zhang et al., AAAI 2026).

Each candidate proxy gets two properties on the training units:

- *alignment*: the Spearman correlation of its (oriented) scores with the target's scores,
  floored at 0 (a proxy that moves against the target gets no weight);
- *stability*: replicate consistency, ``1 - within-unit var / between-unit var`` (see
  :func:`~bayesproxy.methods.relevance.robustness_scores`; 1 when unknown).

Weights are ``alignment * stability`` normalized to one over the proxies with alignment at
least ``min_alignment`` (at most ``top_k``). The prediction is the weighted mean of the
standardized proxy scores through a monotone bounded sigmoid link.

Bounded extrapolation is explicit: predictions never leave ``[chance, ceiling]`` (the range
the link supports), every forecast carries the distance of its aggregate from the training
range in training SDs with ``extrapolation`` set outside it, and with ``max_distance`` the
aggregate is clamped to at most that many SDs beyond the training range before the link.

Examples
--------
>>> from bayesproxy.methods import get_method
>>> get_method("weighted-ensemble", target="t", max_distance=1.0).max_distance
1.0
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy import stats

from bayesproxy.methods._aggregate import (
    ProxyTransform,
    candidate_tasks,
    oriented_scores,
    weighted_aggregate,
)
from bayesproxy.methods._data import UnitData
from bayesproxy.methods.base import MethodInputError
from bayesproxy.methods.bootstrap import BootstrapForecaster
from bayesproxy.methods.link import SigmoidLink, fit_sigmoid_link
from bayesproxy.methods.relevance import robustness_scores

__all__ = ["WeightedEnsembleForecaster"]


@dataclass(frozen=True, eq=False)
class _State:
    transform: ProxyTransform
    weights: np.ndarray
    link: SigmoidLink
    lo: float
    hi: float
    sd: float


def alignment_stability(
    data: UnitData,
    rows: np.ndarray,
    tasks: Sequence[str],
) -> pd.DataFrame:
    """Alignment (Spearman with the target, floored at 0) and stability of each task.

    Parameters
    ----------
    data : UnitData
        The table's per-unit arrays.
    rows : ndarray of int
        Training rows (duplicates from a bootstrap resample are kept for alignment).
    tasks : sequence of str
        Candidate proxies.

    Returns
    -------
    pandas.DataFrame
        Index ``task``; columns ``alignment, correlation, stability, stability_source``.

    Examples
    --------
    >>> alignment_stability(data, rows, ["mmlu"])  # doctest: +SKIP
    """
    scores = oriented_scores(data, tasks)
    y = data.y[rows]
    rows_out = {}
    for task in tasks:
        x = scores[task].to_numpy(float)[rows]
        keep = np.isfinite(x) & np.isfinite(y)
        if keep.sum() >= 3 and np.ptp(x[keep]) > 0 and np.ptp(y[keep]) > 0:
            rho = float(stats.spearmanr(x[keep], y[keep]).statistic)
        else:
            rho = np.nan
        rows_out[task] = {"correlation": rho, "alignment": max(rho, 0.0) if rho == rho else 0.0}
    table = pd.DataFrame.from_dict(rows_out, orient="index")
    unique = np.unique(rows)
    robust = robustness_scores(
        scores.iloc[unique],
        replicate_sd=data.rep_sd[list(tasks)].iloc[unique],
        stderr=data.stderr[list(tasks)].iloc[unique],
    )
    table["stability"] = robust["robustness"].fillna(1.0)  # unknown: no penalty
    table["stability_source"] = robust["source"]
    table.index.name = "task"
    return table[["alignment", "correlation", "stability", "stability_source"]]


class WeightedEnsembleForecaster(BootstrapForecaster):
    """Proxies weighted by alignment × stability, through a bounded monotone link.

    Parameters
    ----------
    target : str, optional
        The task to forecast; defaults to the table's ``target`` attribute.
    proxies : sequence of str, optional
        Candidate tasks; default every other task observed on ``min_coverage`` of the
        training units.
    min_alignment : float, default 0.3
        Keep proxies whose alignment is at least this.
    top_k : int, optional, default 10
        Keep at most this many proxies, by weight.
    max_distance : float, optional
        Clamp the aggregate to at most this many training SDs beyond the training range
        before the link (None: no clamp; the link alone bounds predictions).
    transform : {"standardize", "logit"}, default "standardize"
        Proxy transform before aggregation.
    min_coverage : float, default 0.8
        Least share of training units a candidate must be observed on.
    ceiling : float, default 1.0
        Upper asymptote of the link.
    n_boot, residual_noise, random_seed, min_train_units, resample
        See :class:`~bayesproxy.methods.bootstrap.BootstrapForecaster`.

    Examples
    --------
    >>> from bayesproxy import datasets  # doctest: +SKIP
    >>> sim = datasets.simulate(random_seed=1)  # doctest: +SKIP
    >>> fit = WeightedEnsembleForecaster(target=sim.target).fit(sim.table)  # doctest: +SKIP
    >>> fit.weight_table()  # doctest: +SKIP
    """

    name: ClassVar[str] = "weighted-ensemble"

    def __init__(
        self,
        target: str | None = None,
        *,
        proxies: Sequence[str] | None = None,
        min_alignment: float = 0.3,
        top_k: int | None = 10,
        max_distance: float | None = None,
        transform: str = "standardize",
        min_coverage: float = 0.8,
        ceiling: float = 1.0,
        n_boot: int = 200,
        residual_noise: bool = True,
        random_seed: int = 0,
        min_train_units: int = 5,
        resample: str = "unit",
    ) -> None:
        super().__init__(
            target,
            n_boot=n_boot,
            residual_noise=residual_noise,
            random_seed=random_seed,
            min_train_units=min_train_units,
            resample=resample,
        )
        if max_distance is not None and max_distance < 0:
            raise MethodInputError(
                f"max_distance must be >= 0 or None, got {max_distance}.",
                hint="pass e.g. max_distance=1.0 (training SDs beyond the training range).",
            )
        self.proxies = None if proxies is None else list(proxies)
        self.min_alignment = min_alignment
        self.top_k = top_k
        self.max_distance = max_distance
        self.transform = transform
        self.min_coverage = min_coverage
        self.ceiling = ceiling

    def _weights(self, data: UnitData, rows: np.ndarray) -> pd.DataFrame:
        tasks = candidate_tasks(data, rows, proxies=self.proxies, min_coverage=self.min_coverage)
        table = alignment_stability(data, rows, tasks)
        table["raw_weight"] = table["alignment"] * table["stability"]
        keep = (table["alignment"] >= self.min_alignment) & (table["raw_weight"] > 0)
        chosen = table[keep].sort_values("raw_weight", ascending=False)
        if self.top_k is not None:
            chosen = chosen.head(self.top_k)
        if chosen.empty:
            raise MethodInputError(
                f"no proxy task has alignment >= {self.min_alignment} (and stability > 0) "
                f"with target {self.target!r}.",
                hint="lower min_alignment, or add candidate tasks that track the target.",
            )
        table["weight"] = (chosen["raw_weight"] / chosen["raw_weight"].sum()).reindex(table.index)
        table["weight"] = table["weight"].fillna(0.0)
        return table.sort_values("weight", ascending=False)

    def _fit_state(self, data: UnitData, rows: np.ndarray) -> _State:
        table = self._weights(data, rows)
        chosen = table[table["weight"] > 0]
        transform = ProxyTransform.fit(data, rows, list(chosen.index), self.transform)
        weights = chosen["weight"].to_numpy(float)
        aggregate = weighted_aggregate(transform(data), weights)[rows]
        link = fit_sigmoid_link(
            aggregate,
            data.y[rows],
            chance=data.target_chance,
            ceiling=self.ceiling,
            start=getattr(self.state_, "link", None),
        )
        finite = aggregate[np.isfinite(aggregate)]
        return _State(
            transform=transform,
            weights=weights,
            link=link,
            lo=float(np.min(finite)),
            hi=float(np.max(finite)),
            sd=float(np.std(finite, ddof=1)) or 1.0,
        )

    def _predict_state(self, state: _State, data: UnitData) -> tuple[np.ndarray, np.ndarray]:
        aggregate = weighted_aggregate(state.transform(data), state.weights)
        clamped = aggregate
        if self.max_distance is not None:
            margin = self.max_distance * state.sd
            clamped = np.clip(aggregate, state.lo - margin, state.hi + margin)
        return state.link(clamped), aggregate

    def weight_table(self) -> pd.DataFrame:
        """Alignment, stability and weight of every candidate on the training units.

        Returns
        -------
        pandas.DataFrame
            Index ``task``; columns ``alignment, correlation, stability, stability_source,
            raw_weight, weight`` (weights sum to one over the chosen proxies).

        Examples
        --------
        >>> fit.weight_table().head()  # doctest: +SKIP
        """
        self._check_fitted()
        return self._weights(self.data_, self.train_rows_)

    @property
    def weights_(self) -> pd.Series:
        """Weight of each proxy in the full-data fit (sums to one)."""
        self._check_fitted()
        return pd.Series(self.state_.weights, index=list(self.state_.transform.tasks))
