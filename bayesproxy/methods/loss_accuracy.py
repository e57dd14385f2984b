"""Loss → accuracy two-step (the OLMo model ladder, Bhagia et al. 2024).

Step 1: a power law of the task loss in training compute, ``L = E + A · C^(-α)`` (fitted on
the training units' loss-like proxy, a ``kind == "metric"`` task such as the task's
bits-per-byte). Step 2: the target accuracy as a bounded sigmoid of the loss,
``y = c + (u - c) * sigmoid(a - b · L)``. A forecast chains the two: compute → predicted loss
→ accuracy, so a unit needs only its compute (by default), as when planning a larger run.

Examples
--------
>>> from bayesproxy.methods import get_method
>>> get_method("loss-accuracy", target="mmlu", loss_task="mmlu_bpb").loss_task
'mmlu_bpb'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy import stats
from scipy.optimize import least_squares

from bayesproxy.methods._data import UnitData
from bayesproxy.methods.base import MethodInputError
from bayesproxy.methods.bootstrap import BootstrapForecaster
from bayesproxy.methods.link import SigmoidLink, fit_sigmoid_link

__all__ = ["LossAccuracyForecaster", "PowerLaw", "fit_power_law"]


@dataclass(frozen=True)
class PowerLaw:
    """``L = E + A · C^(-α)``, stored as ``E + exp(log_a - alpha · (log10 C - x0) · ln 10)``."""

    e: float
    log_a: float
    alpha: float
    x0: float

    def __call__(self, log10_c: np.ndarray) -> np.ndarray:
        """Evaluate at ``log10 C``."""
        return self.e + np.exp(
            self.log_a - self.alpha * (np.asarray(log10_c) - self.x0) * np.log(10)
        )


def fit_power_law(log10_c: np.ndarray, loss: np.ndarray) -> PowerLaw:
    """Fit ``L = E + A · C^(-α)`` by least squares on the loss scale.

    Parameters
    ----------
    log10_c : ndarray
        log10 of training FLOPs.
    loss : ndarray
        The loss at each compute; pairs with a NaN are dropped.

    Returns
    -------
    PowerLaw

    Examples
    --------
    >>> x = np.linspace(19, 23, 30)
    >>> law = fit_power_law(x, 0.5 + 3.0 * (10.0**x) ** -0.1)
    >>> round(law.alpha, 3), round(law.e, 3)
    (0.1, 0.5)
    """
    x = np.asarray(log10_c, float)
    y = np.asarray(loss, float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(x) < 4 or np.ptp(x) == 0:
        raise MethodInputError(
            f"the compute → loss power law needs at least 4 units with distinct compute and "
            f"an observed loss; got {len(x)}.",
            hint="fit on more units (sizes or checkpoints) with the loss task evaluated.",
        )
    x0 = float(np.mean(x))
    ln10 = np.log(10)

    def residuals(p: np.ndarray) -> np.ndarray:
        e, log_a, alpha = p
        return e + np.exp(log_a - alpha * (x - x0) * ln10) - y

    y_min, span = float(np.min(y)), float(np.ptp(y)) or 1.0
    best = None
    for frac in (0.0, 0.5, 0.9):
        e0 = y_min - span * (1.0 - frac) if frac else min(0.0, y_min - span)
        e0 = max(e0, 0.0) if y_min > 0 else e0
        slope, icpt = np.polyfit((x - x0) * ln10, np.log(np.clip(y - e0, 1e-9, None)), 1)
        p0 = np.array([e0, icpt, max(-slope, 1e-3)])
        upper_e = y_min - 1e-6
        p0[0] = min(p0[0], upper_e - 1e-6)
        result = least_squares(
            residuals,
            p0,
            bounds=([-np.inf, -50.0, 0.0], [upper_e, 50.0, 5.0]),
        )
        if best is None or result.cost < best.cost:
            best = result
    assert best is not None
    e, log_a, alpha = best.x
    return PowerLaw(e=float(e), log_a=float(log_a), alpha=float(alpha), x0=x0)


@dataclass(frozen=True, eq=False)
class _State:
    task: str
    law: PowerLaw
    link: SigmoidLink


class LossAccuracyForecaster(BootstrapForecaster):
    """Compute → task loss (power law) → accuracy (sigmoid), as in the OLMo ladder.

    Parameters
    ----------
    target : str, optional
        The task to forecast; defaults to the table's ``target`` attribute.
    loss_task : str, optional
        The loss-like proxy (a ``kind == "metric"`` task, lower is better). Default: the
        metric task most strongly (negatively) Spearman-correlated with the target on the
        training units.
    use_observed_loss : bool, default False
        Forecast from a unit's observed loss where it has one (a loss-proxy method) instead
        of from its compute alone (the ladder's forecast of a run not yet trained).
    ceiling : float, default 1.0
        Upper asymptote of the link.
    n_boot, residual_noise, random_seed, min_train_units, resample
        See :class:`~bayesproxy.methods.bootstrap.BootstrapForecaster`.

    Examples
    --------
    >>> from bayesproxy import datasets  # doctest: +SKIP
    >>> sim = datasets.simulate(random_seed=1)  # doctest: +SKIP
    >>> LossAccuracyForecaster(target=sim.target).fit(sim.table).forecast()  # doctest: +SKIP
    """

    name: ClassVar[str] = "loss-accuracy"

    def __init__(
        self,
        target: str | None = None,
        *,
        loss_task: str | None = None,
        use_observed_loss: bool = False,
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
        self.loss_task = loss_task
        self.use_observed_loss = use_observed_loss
        self.ceiling = ceiling

    def _validate(self, data: UnitData) -> None:
        metrics = [t for t in data.scores.columns if data.kind[t] == "metric" and t != data.target]
        if self.loss_task is not None:
            data.require_tasks([self.loss_task], role="loss task")
            if data.kind[self.loss_task] != "metric":
                raise MethodInputError(
                    f"loss_task {self.loss_task!r} is an accuracy, not a loss-like metric.",
                    hint=f"choose a kind == 'metric' task, e.g. one of {metrics[:5]}.",
                )
        elif not metrics:
            raise MethodInputError(
                f"{self.name} needs a loss-like proxy (a task of kind 'metric', e.g. "
                "bits-per-byte or cross-entropy), and the table has none.",
                hint="add the task losses to the table, or use a proxy-based method.",
            )
        known = np.isfinite(data.flops) & (data.flops > 0) & np.isfinite(data.y)
        if known.sum() < self.min_train_units:
            raise MethodInputError(
                f"{self.name} needs training FLOPs, but only {int(known.sum())} unit(s) with "
                f"the target {data.target!r} have a positive 'flops' coordinate.",
                hint="add params and tokens (FLOPs ~ 6·N·D) or a flops column to the table.",
            )

    def _choose_loss(self, data: UnitData, rows: np.ndarray) -> str:
        if self.loss_task is not None:
            return self.loss_task
        y = data.y[rows]
        best, best_rho = None, np.inf
        for task in data.scores.columns:
            if data.kind[task] != "metric" or task == data.target:
                continue
            x = data.scores[task].to_numpy(float)[rows]
            keep = np.isfinite(x) & np.isfinite(y)
            if keep.sum() < 4 or np.ptp(x[keep]) == 0 or np.ptp(y[keep]) == 0:
                continue
            rho = float(stats.spearmanr(x[keep], y[keep]).statistic)
            if rho < best_rho:
                best, best_rho = task, rho
        if best is None:
            raise MethodInputError(
                "no loss-like task is observed together with the target on enough units.",
                hint="pass loss_task=... naming a metric evaluated on the training units.",
            )
        return best

    @staticmethod
    def _log_c(data: UnitData) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(data.flops > 0, np.log10(data.flops), np.nan)

    def _fit_state(self, data: UnitData, rows: np.ndarray) -> _State:
        task = self._choose_loss(data, rows)
        loss = data.scores[task].to_numpy(float)
        law = fit_power_law(self._log_c(data)[rows], loss[rows])
        link = fit_sigmoid_link(
            -loss[rows],  # lower loss, higher accuracy: a monotone increasing link in -L
            data.y[rows],
            chance=data.target_chance,
            ceiling=self.ceiling,
            start=getattr(self.state_, "link", None),
        )
        return _State(task=task, law=law, link=link)

    def _predict_state(self, state: _State, data: UnitData) -> tuple[np.ndarray, np.ndarray]:
        log_c = self._log_c(data)
        loss = state.law(log_c)
        if self.use_observed_loss and state.task in data.scores.columns:
            observed = data.scores[state.task].to_numpy(float)
            loss = np.where(np.isfinite(observed), observed, loss)
        return state.link(-loss), log_c

    @property
    def loss_task_(self) -> str:
        """The loss-like task of the full-data fit."""
        self._check_fitted()
        return self.state_.task

    @property
    def power_law_(self) -> PowerLaw:
        """The fitted compute → loss power law."""
        self._check_fitted()
        return self.state_.law
