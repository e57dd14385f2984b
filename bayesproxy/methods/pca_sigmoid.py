"""PCA + sigmoid (Observational Scaling Laws, Ruan et al. 2024).

Standard benchmark scores are standardized on the training units, their first ``k``
principal components (fitted on training units only) summarize capability, and the target is
a bounded sigmoid of a linear combination of them: ``y = c + (u - c) * sigmoid(a + w · PC)``.
Missing benchmark cells are imputed with the training mean of that benchmark (0 after
standardization), i.e. a unit missing a benchmark is placed at the average on it.

Examples
--------
>>> from bayesproxy.methods import get_method
>>> get_method("pca-sigmoid", target="t", n_components=3).n_components
3
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from bayesproxy.methods._aggregate import ProxyTransform, candidate_tasks
from bayesproxy.methods._data import UnitData
from bayesproxy.methods.base import MethodInputError
from bayesproxy.methods.bootstrap import BootstrapForecaster
from bayesproxy.methods.link import SigmoidLink, fit_sigmoid_link

__all__ = ["PCASigmoidForecaster"]


@dataclass(frozen=True, eq=False)
class _State:
    transform: ProxyTransform
    components: np.ndarray  # (n_tasks, k)
    explained: np.ndarray  # share of variance per component
    link: SigmoidLink


class PCASigmoidForecaster(BootstrapForecaster):
    """The target as a bounded sigmoid of ``k`` principal components of benchmark scores.

    Parameters
    ----------
    target : str, optional
        The task to forecast; defaults to the table's ``target`` attribute.
    benchmarks : sequence of str, optional
        The standard benchmarks to decompose (ObsScaling used eight: MMLU, ARC-C,
        HellaSwag, Winogrande, TruthfulQA, GSM8K, XWinograd, HumanEval); default every other
        accuracy task observed on ``min_coverage`` of the training units.
    n_components : int, default 3
        Number of principal components ``k``.
    min_coverage : float, default 0.8
        Least share of training units a benchmark must be observed on.
    ceiling : float, default 1.0
        Upper asymptote of the link.
    n_boot, residual_noise, random_seed, min_train_units, resample
        See :class:`~bayesproxy.methods.bootstrap.BootstrapForecaster`.

    Examples
    --------
    >>> from bayesproxy import datasets  # doctest: +SKIP
    >>> sim = datasets.simulate(random_seed=1)  # doctest: +SKIP
    >>> PCASigmoidForecaster(target=sim.target, n_components=2).fit(sim.table)  # doctest: +SKIP
    """

    name: ClassVar[str] = "pca-sigmoid"

    def __init__(
        self,
        target: str | None = None,
        *,
        benchmarks: Sequence[str] | None = None,
        n_components: int = 3,
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
        if n_components < 1:
            raise MethodInputError(
                f"n_components must be at least 1, got {n_components}.",
                hint="ObsScaling used k = 3 principal components.",
            )
        self.benchmarks = None if benchmarks is None else list(benchmarks)
        self.n_components = int(n_components)
        self.min_coverage = min_coverage
        self.ceiling = ceiling

    def _tasks(self, data: UnitData, rows: np.ndarray) -> list[str]:
        tasks = candidate_tasks(data, rows, proxies=self.benchmarks, min_coverage=self.min_coverage)
        if self.benchmarks is None:
            tasks = [t for t in tasks if data.kind[t] == "accuracy"]
        if len(tasks) < self.n_components:
            raise MethodInputError(
                f"{self.name} with n_components={self.n_components} needs at least that many "
                f"benchmarks observed on {self.min_coverage:.0%} of the training units; "
                f"found {len(tasks)}: {tasks}.",
                hint="pass benchmarks=[...] explicitly, or lower n_components.",
            )
        return tasks

    def _scores(self, transform: ProxyTransform, data: UnitData) -> np.ndarray:
        z = transform(data)
        return np.where(np.isfinite(z), z, 0.0)  # training-mean imputation

    def _fit_state(self, data: UnitData, rows: np.ndarray) -> _State:
        tasks = self._tasks(data, rows)
        transform = ProxyTransform.fit(data, rows, tasks, "standardize")
        z = self._scores(transform, data)[rows]
        _, singular, vt = np.linalg.svd(z - z.mean(axis=0), full_matrices=False)
        components = vt[: self.n_components].T
        # orient each component so that it rises with the mean benchmark score
        components = components * np.where(components.sum(axis=0) < 0, -1.0, 1.0)
        explained = singular**2 / np.sum(singular**2)
        link = fit_sigmoid_link(
            z @ components,
            data.y[rows],
            chance=data.target_chance,
            ceiling=self.ceiling,
            increasing=False,  # later components have no natural sign
            start=getattr(self.state_, "link", None),
        )
        return _State(transform, components, explained[: self.n_components], link)

    def _predict_state(self, state: _State, data: UnitData) -> tuple[np.ndarray, np.ndarray]:
        pcs = self._scores(state.transform, data) @ state.components
        return state.link(pcs), pcs

    @property
    def explained_variance_(self) -> np.ndarray:
        """Share of the standardized benchmarks' variance each component explains."""
        self._check_fitted()
        return self.state_.explained
