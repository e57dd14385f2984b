"""Mean-of-proxies sigmoid: the unweighted mean of standardized proxy scores through a link.

The simplest proxy baseline: no selection, no weights. If a weighted method cannot beat it,
its weights are not earning their keep.

Examples
--------
>>> from bayesproxy.methods import get_method
>>> get_method("mean-proxy-sigmoid", target="t", proxies=["a", "b"]).proxies
['a', 'b']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from bayesproxy.methods._aggregate import ProxyTransform, candidate_tasks, weighted_aggregate
from bayesproxy.methods._data import UnitData
from bayesproxy.methods.bootstrap import BootstrapForecaster
from bayesproxy.methods.link import SigmoidLink, fit_sigmoid_link

__all__ = ["MeanProxySigmoidForecaster"]


@dataclass(frozen=True, eq=False)
class _State:
    transform: ProxyTransform
    link: SigmoidLink


class MeanProxySigmoidForecaster(BootstrapForecaster):
    """The target as a bounded sigmoid of the mean standardized proxy score.

    Parameters
    ----------
    target : str, optional
        The task to forecast; defaults to the table's ``target`` attribute.
    proxies : sequence of str, optional
        Proxies to average; default every other task observed on ``min_coverage`` of the
        training units. Losses and other lower-is-better metrics are negated first.
    transform : {"standardize", "logit"}, default "standardize"
        Proxy transform before averaging.
    min_coverage : float, default 0.8
        Least share of training units a proxy must be observed on.
    ceiling : float, default 1.0
        Upper asymptote of the link.
    n_boot, residual_noise, random_seed, min_train_units, resample
        See :class:`~bayesproxy.methods.bootstrap.BootstrapForecaster`.

    Examples
    --------
    >>> from bayesproxy import datasets  # doctest: +SKIP
    >>> sim = datasets.simulate(random_seed=1)  # doctest: +SKIP
    >>> MeanProxySigmoidForecaster(target=sim.target).fit(sim.table).forecast()  # doctest: +SKIP
    """

    name: ClassVar[str] = "mean-proxy-sigmoid"

    def __init__(
        self,
        target: str | None = None,
        *,
        proxies: Sequence[str] | None = None,
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
        self.proxies = None if proxies is None else list(proxies)
        self.transform = transform
        self.min_coverage = min_coverage
        self.ceiling = ceiling

    def _fit_state(self, data: UnitData, rows: np.ndarray) -> _State:
        tasks = candidate_tasks(data, rows, proxies=self.proxies, min_coverage=self.min_coverage)
        transform = ProxyTransform.fit(data, rows, tasks, self.transform)
        aggregate = weighted_aggregate(transform(data), np.ones(len(tasks)))
        link = fit_sigmoid_link(
            aggregate[rows],
            data.y[rows],
            chance=data.target_chance,
            ceiling=self.ceiling,
            start=getattr(self.state_, "link", None),
        )
        return _State(transform=transform, link=link)

    def _predict_state(self, state: _State, data: UnitData) -> tuple[np.ndarray, np.ndarray]:
        aggregate = weighted_aggregate(state.transform(data), np.ones(len(state.transform.tasks)))
        return state.link(aggregate), aggregate
