"""Shared steps of the proxy-aggregate methods: candidates, transform, weighted aggregate."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import logit

from bayesproxy.methods._data import UnitData
from bayesproxy.methods.base import MethodInputError

__all__ = ["ProxyTransform", "candidate_tasks", "oriented_scores", "weighted_aggregate"]

TRANSFORMS = ("standardize", "logit")


def candidate_tasks(
    data: UnitData,
    rows: np.ndarray,
    *,
    proxies: Sequence[str] | None,
    min_coverage: float,
) -> list[str]:
    """Candidate proxies: the given ones, else every other task observed on enough rows."""
    if proxies is not None:
        names = list(proxies)
        data.require_tasks(names)
        if data.target in names:
            raise MethodInputError(
                f"the target {data.target!r} is among the proxies.",
                hint="leave the target out of proxies=[...]: it cannot predict itself.",
            )
    else:
        names = [t for t in data.scores.columns if t != data.target]
    observed = data.scores.iloc[rows][names].notna().mean(axis=0)
    kept = [t for t in names if observed[t] >= min_coverage]
    if not kept:
        raise MethodInputError(
            f"no candidate proxy task is observed on at least {min_coverage:.0%} of the "
            f"training units of target {data.target!r}.",
            hint="evaluate the proxies on the units that have the target, or lower min_coverage.",
        )
    return kept


def oriented_scores(data: UnitData, tasks: Sequence[str]) -> pd.DataFrame:
    """Scores of ``tasks`` with lower-is-better metrics (losses) negated."""
    sign = np.where(data.higher_is_better[list(tasks)].to_numpy(bool), 1.0, -1.0)
    return data.scores[list(tasks)] * sign


@dataclass(frozen=True, eq=False)
class ProxyTransform:
    """Orient, optionally logit above chance, and standardize on the training units."""

    tasks: tuple[str, ...]
    kind: str
    center: np.ndarray
    scale: np.ndarray

    @staticmethod
    def _raw(data: UnitData, tasks: Sequence[str], kind: str) -> np.ndarray:
        if kind not in TRANSFORMS:
            raise MethodInputError(
                f"unknown transform {kind!r}.", hint=f"choose from {list(TRANSFORMS)}."
            )
        values = data.scores[list(tasks)].to_numpy(float)
        if kind == "logit":
            chance = data.chance[list(tasks)].to_numpy(float)
            is_acc = (data.kind[list(tasks)] == "accuracy").to_numpy()
            above = np.clip((values - chance) / (1.0 - chance), 0.01, 0.99)
            with np.errstate(divide="ignore", invalid="ignore"):
                log_metric = np.log(np.where(values > 0, values, np.nan))
            values = np.where(is_acc, logit(above), log_metric)
        sign = np.where(data.higher_is_better[list(tasks)].to_numpy(bool), 1.0, -1.0)
        return values * sign

    @classmethod
    def fit(
        cls, data: UnitData, rows: np.ndarray, tasks: Sequence[str], kind: str
    ) -> ProxyTransform:
        """Learn the centre and scale of each task on ``rows``."""
        raw = cls._raw(data, tasks, kind)[rows]
        center = np.nanmean(raw, axis=0)
        scale = np.nanstd(raw, axis=0)
        scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
        return cls(tasks=tuple(tasks), kind=kind, center=center, scale=scale)

    def __call__(self, data: UnitData) -> np.ndarray:
        """Return the transformed scores of every unit, shape (n_units, n_tasks)."""
        data.require_tasks(list(self.tasks))
        return (self._raw(data, self.tasks, self.kind) - self.center) / self.scale


def weighted_aggregate(z: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted mean over the proxies a unit has (weights renormalized per unit; NaN if none)."""
    present = np.isfinite(z)
    w = np.where(present, weights[None, :], 0.0)
    total = w.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, np.nansum(np.where(present, z, 0.0) * w, axis=1) / total, np.nan)
