"""Proxy-task selection and aggregation (seed 1: "Proxy Tasks Are All You Need").

1. Relevance of each candidate task: Pearson, Spearman and Kendall correlation of its
   performance differences with the target's across model pairs (all pairs, pairs within a
   run such as early/late checkpoints, or pairs the user lists).
2. Robustness: replicate consistency, ``1 - within-unit var / between-unit var``.
3. Selection: relevance and robustness above thresholds, then the ``top_k`` most relevant.
4. Prediction: the relevance-weighted mean of the transformed (oriented, standardized)
   proxy scores, through a monotone bounded sigmoid link fitted to the target.

Uncertainty comes from the bootstrap over training units (selection, weights and link are
all refitted per resample) plus resampled residuals; ``n_boot=0`` reports none.

Examples
--------
>>> from bayesproxy.methods import get_method
>>> get_method("proxy-selection", target="t", top_k=3).top_k
3
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

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
from bayesproxy.methods.relevance import (
    RELEVANCE_METRICS,
    model_pairs,
    relevance_scores,
    robustness_scores,
)

__all__ = ["ProxySelectionForecaster"]


@dataclass(frozen=True, eq=False)
class _State:
    transform: ProxyTransform
    weights: np.ndarray
    link: SigmoidLink


class ProxySelectionForecaster(BootstrapForecaster):
    """Select relevant, robust proxy tasks and predict the target from their aggregate.

    Parameters
    ----------
    target : str, optional
        The task to forecast; defaults to the table's ``target`` attribute.
    proxies : sequence of str, optional
        Candidate tasks; default every other task observed on ``min_coverage`` of the
        training units.
    pairs : {"all", "run"} or sequence of (str, str), default "all"
        Model pairs for the relevance correlations: all pairs of training units, pairs within
        one training run (e.g. early vs late checkpoints), or explicit ``(unit_a, unit_b)``
        labels (differences are ``b - a``, e.g. (small, large)).
    relevance : {"pearson", "spearman", "kendall"}, default "spearman"
        The correlation used for selection and weights.
    min_relevance : float, default 0.3
        Keep proxies whose relevance is at least this.
    min_robustness : float, default 0.5
        Keep proxies whose robustness is at least this (unknown robustness passes).
    top_k : int, optional, default 10
        Keep at most this many of the most relevant passing proxies.
    transform : {"standardize", "logit"}, default "standardize"
        Proxy transform before aggregation: z-scores, or logit above chance (log for
        metrics) then z-scores.
    min_coverage : float, default 0.8
        Least share of training units a candidate must be observed on.
    max_pairs : int, default 5000
        Subsample this many pairs when there are more (seeded), to bound the cost.
    ceiling : float, default 1.0
        Upper asymptote of the link.
    n_boot, residual_noise, random_seed, min_train_units, resample
        See :class:`~bayesproxy.methods.bootstrap.BootstrapForecaster` (``n_boot`` default
        100 here: every refit recomputes relevance).

    Examples
    --------
    >>> from bayesproxy import datasets  # doctest: +SKIP
    >>> sim = datasets.simulate(random_seed=1)  # doctest: +SKIP
    >>> fit = ProxySelectionForecaster(target=sim.target).fit(sim.table)  # doctest: +SKIP
    >>> fit.relevance_table().head()  # doctest: +SKIP
    """

    name: ClassVar[str] = "proxy-selection"

    def __init__(
        self,
        target: str | None = None,
        *,
        proxies: Sequence[str] | None = None,
        pairs: str | Sequence[tuple[str, str]] = "all",
        relevance: str = "spearman",
        min_relevance: float = 0.3,
        min_robustness: float = 0.5,
        top_k: int | None = 10,
        transform: str = "standardize",
        min_coverage: float = 0.8,
        max_pairs: int = 5000,
        ceiling: float = 1.0,
        n_boot: int = 100,
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
        if relevance not in RELEVANCE_METRICS:
            raise MethodInputError(
                f"unknown relevance metric {relevance!r}.",
                hint=f"choose from {list(RELEVANCE_METRICS)}.",
            )
        if isinstance(pairs, str) and pairs not in ("all", "run"):
            raise MethodInputError(
                f"pairs must be 'all', 'run' or a list of (unit_a, unit_b); got {pairs!r}.",
                hint="e.g. pairs=[('small-1x', 'large-1x'), ('run@1000', 'run@5000')].",
            )
        self.proxies = None if proxies is None else list(proxies)
        self.pairs = pairs if isinstance(pairs, str) else [tuple(p) for p in pairs]
        self.relevance = relevance
        self.min_relevance = min_relevance
        self.min_robustness = min_robustness
        self.top_k = top_k
        self.transform = transform
        self.min_coverage = min_coverage
        self.max_pairs = max_pairs
        self.ceiling = ceiling

    # -- the statistics -----------------------------------------------------------------
    def _pairs(self, data: UnitData, rows: np.ndarray) -> np.ndarray:
        """Pairs of positions in ``rows`` (positions, so bootstrap copies stay distinct)."""
        if isinstance(self.pairs, str):
            groups = data.run[rows].astype(str) if self.pairs == "run" else None
            pairs = model_pairs(len(rows), groups=groups, source=rows)
        else:
            position = {}
            for pos, row in enumerate(rows):
                position.setdefault(data.units[row], pos)
            unknown = [p for p in self.pairs if p[0] not in position or p[1] not in position]
            if len(unknown) == len(self.pairs):
                raise MethodInputError(
                    f"none of the given pairs has both units among the training units "
                    f"(e.g. {unknown[:3]}).",
                    hint="list pairs of unit labels whose target is observed.",
                )
            pairs = np.array(
                [[position[a], position[b]] for a, b in self.pairs if (a, b) not in unknown]
            )
        if len(pairs) > self.max_pairs:
            rng = np.random.default_rng(self.random_seed)
            pairs = pairs[rng.choice(len(pairs), self.max_pairs, replace=False)]
        if len(pairs) < 3:
            raise MethodInputError(
                f"only {len(pairs)} model pair(s) are available for relevance.",
                hint="use pairs='all', or fit on more units with the target observed.",
            )
        return pairs

    def _statistics(self, data: UnitData, rows: np.ndarray, metrics: Sequence[str]) -> pd.DataFrame:
        tasks = candidate_tasks(data, rows, proxies=self.proxies, min_coverage=self.min_coverage)
        scores = oriented_scores(data, tasks).iloc[rows].reset_index(drop=True)
        table = relevance_scores(scores, data.y[rows], self._pairs(data, rows), metrics=metrics)
        unique = np.unique(rows)
        robust = robustness_scores(
            oriented_scores(data, tasks).iloc[unique],
            replicate_sd=data.rep_sd[tasks].iloc[unique],
            stderr=data.stderr[tasks].iloc[unique],
        )
        return table.join(robust)

    def _select(self, stats: pd.DataFrame) -> pd.DataFrame:
        rel = stats[self.relevance]
        robust_ok = stats["robustness"].isna() | (stats["robustness"] >= self.min_robustness)
        chosen = stats[(rel >= self.min_relevance) & (rel > 0) & robust_ok]
        chosen = chosen.sort_values(self.relevance, ascending=False)
        if self.top_k is not None:
            chosen = chosen.head(self.top_k)
        if chosen.empty:
            best = rel.idxmax() if rel.notna().any() else None
            raise MethodInputError(
                f"no proxy task passes relevance >= {self.min_relevance} and robustness >= "
                f"{self.min_robustness} for target {self.target!r}"
                + (f" (most relevant: {best!r}, {rel.max():.2f})." if best else "."),
                hint="lower min_relevance / min_robustness, or add candidate tasks.",
            )
        return chosen

    # -- hooks --------------------------------------------------------------------------
    def _fit_state(self, data: UnitData, rows: np.ndarray) -> _State:
        stats = self._statistics(data, rows, [self.relevance])
        chosen = self._select(stats)
        weights = chosen[self.relevance].to_numpy(float)
        weights = weights / weights.sum()
        transform = ProxyTransform.fit(data, rows, list(chosen.index), self.transform)
        aggregate = weighted_aggregate(transform(data), weights)
        link = fit_sigmoid_link(
            aggregate[rows],
            data.y[rows],
            chance=data.target_chance,
            ceiling=self.ceiling,
            start=getattr(self.state_, "link", None),
        )
        return _State(transform=transform, weights=weights, link=link)

    def _predict_state(self, state: _State, data: UnitData) -> tuple[np.ndarray, np.ndarray]:
        aggregate = weighted_aggregate(state.transform(data), state.weights)
        return state.link(aggregate), aggregate

    # -- reporting ----------------------------------------------------------------------
    @property
    def selected_(self) -> list[str]:
        """The selected proxy tasks of the full-data fit, most relevant first."""
        self._check_fitted()
        return list(self.state_.transform.tasks)

    @property
    def weights_(self) -> pd.Series:
        """Aggregation weight of each selected proxy (sums to one)."""
        self._check_fitted()
        return pd.Series(self.state_.weights, index=self.selected_, name="weight")

    def relevance_table(self) -> pd.DataFrame:
        """Relevance (three correlations) and robustness of every candidate task.

        The data of the paper's Figure 1 heat map, on the training units of the fit.

        Returns
        -------
        pandas.DataFrame
            Index ``task``; columns ``pearson, spearman, kendall, n_pairs, robustness,
            within_sd, between_sd, source, selected, weight``, sorted by the selection metric.

        Examples
        --------
        >>> fit.relevance_table()[["pearson", "spearman", "kendall"]]  # doctest: +SKIP
        """
        self._check_fitted()
        stats = self._statistics(self.data_, self.train_rows_, RELEVANCE_METRICS)
        weights = self.weights_
        stats["selected"] = stats.index.isin(weights.index)
        stats["weight"] = weights.reindex(stats.index).fillna(0.0)
        return stats.sort_values(self.relevance, ascending=False)
