"""Compute-only sigmoid: the target against log training FLOPs, optionally per-family intercepts.

``y = c + (u - c) * sigmoid(a + a_f + b * log10 C)``. The family deviations ``a_f`` are
ridge-shrunk towards zero, so a family unseen in training gets the common intercept ``a``:
the forecast of a compute-only scaling law. This is the baseline every proxy method must beat.

Examples
--------
>>> from bayesproxy.methods import get_method
>>> get_method("compute-sigmoid", target="gsm8k", family_intercepts=True).family_intercepts
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from bayesproxy.methods._data import UnitData
from bayesproxy.methods.base import MethodInputError
from bayesproxy.methods.bootstrap import BootstrapForecaster
from bayesproxy.methods.link import SigmoidLink, fit_sigmoid_link

__all__ = ["ComputeSigmoidForecaster"]


@dataclass(frozen=True, eq=False)
class _State:
    link: SigmoidLink
    families: tuple[str, ...]


class ComputeSigmoidForecaster(BootstrapForecaster):
    """The target as a bounded sigmoid of log10 training FLOPs.

    Parameters
    ----------
    target : str, optional
        The task to forecast; defaults to the table's ``target`` attribute.
    family_intercepts : bool, default False
        Add a ridge-shrunk intercept per model family (``family`` coordinate).
    family_ridge : float, default 1.0
        Strength of the shrinkage of the family intercepts (on standardized columns).
    ceiling : float, default 1.0
        Upper asymptote of the link.
    n_boot, residual_noise, random_seed, min_train_units, resample
        See :class:`~bayesproxy.methods.bootstrap.BootstrapForecaster`.

    Examples
    --------
    >>> from bayesproxy import datasets  # doctest: +SKIP
    >>> sim = datasets.simulate(random_seed=1)  # doctest: +SKIP
    >>> ComputeSigmoidForecaster(target=sim.target).fit(sim.table).forecast()  # doctest: +SKIP
    """

    name: ClassVar[str] = "compute-sigmoid"

    def __init__(
        self,
        target: str | None = None,
        *,
        family_intercepts: bool = False,
        family_ridge: float = 1.0,
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
        self.family_intercepts = family_intercepts
        self.family_ridge = family_ridge
        self.ceiling = ceiling

    def _validate(self, data: UnitData) -> None:
        known = np.isfinite(data.flops) & (data.flops > 0)
        trained = known & np.isfinite(data.y)
        if trained.sum() < self.min_train_units:
            missing = data.units[np.isfinite(data.y) & ~known]
            raise MethodInputError(
                f"{self.name} needs training FLOPs, but only {int(trained.sum())} unit(s) "
                f"with the target {data.target!r} have a positive 'flops' coordinate "
                f"(missing on e.g. {list(missing[:5])}).",
                hint="add params and tokens (FLOPs ~ 6·N·D) or a flops column to the table, "
                "or use a proxy-based method.",
            )

    def _design(self, data: UnitData, families: tuple[str, ...]) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            log_c = np.where(data.flops > 0, np.log10(data.flops), np.nan)
        if not families:
            return log_c[:, None]
        onehot = (data.family.astype(str)[:, None] == np.array(families)[None, :]).astype(float)
        return np.column_stack([log_c, onehot])

    def _fit_state(self, data: UnitData, rows: np.ndarray) -> _State:
        families: tuple[str, ...] = ()
        if self.family_intercepts:
            families = tuple(sorted(set(data.family[rows].astype(str))))
            if len(families) < 2:
                families = ()  # one family: its intercept is the common one
        x = self._design(data, families)[rows]
        d = x.shape[1]
        increasing = np.r_[True, np.zeros(d - 1, bool)]
        ridge = np.r_[0.0, np.full(d - 1, self.family_ridge)]
        link = fit_sigmoid_link(
            x if d > 1 else x[:, 0],
            data.y[rows],
            chance=data.target_chance,
            ceiling=self.ceiling,
            increasing=increasing if d > 1 else True,
            ridge=ridge if d > 1 else 0.0,
            start=getattr(self.state_, "link", None),
        )
        return _State(link=link, families=families)

    def _predict_state(self, state: _State, data: UnitData) -> tuple[np.ndarray, np.ndarray]:
        x = self._design(data, state.families)
        mean = state.link(x if x.shape[1] > 1 else x[:, 0])
        return mean, x[:, 0]  # distance is measured in log compute only
