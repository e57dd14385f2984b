"""Bootstrap over units: uncertainty for the deterministic methods, and their shared lifecycle.

A deterministic method (least squares, a correlation-weighted aggregate) has no posterior.
The honest uncertainty it can offer is sampling uncertainty: refit on training units drawn
with replacement, predict with every refit, and add the point fit's residuals (resampled)
for the target's own noise. :class:`BootstrapForecaster` implements ``fit``, ``forecast`` and
``predictive_samples`` once on top of two hooks each method provides: ``_fit_state`` (fit
on some rows of the training table) and ``_predict_state`` (point predictions and the link
input for any table). With ``n_boot=0`` a method reports no uncertainty at all.
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
import xarray as xr

from bayesproxy.errors import BayesproxyError, InsufficientTargetError
from bayesproxy.methods._data import UnitData, unit_data
from bayesproxy.methods.base import (
    MethodInputError,
    NotFittedError,
    make_forecast_frame,
    range_distance,
)

__all__ = ["BootstrapForecaster", "bootstrap_rows"]


def bootstrap_rows(
    rows: np.ndarray,
    *,
    n_boot: int,
    groups: np.ndarray | None = None,
    random_seed: int | None = None,
) -> list[np.ndarray]:
    """Draw ``n_boot`` resamples of ``rows`` with replacement.

    Parameters
    ----------
    rows : ndarray of int
        Row indices of the training units.
    n_boot : int
        Number of resamples.
    groups : ndarray, optional
        A label per row (e.g. the training run): whole groups are resampled, keeping all their
        rows together (a block bootstrap: checkpoints of one run are not independent).
    random_seed : int, optional
        Seed for reproducible resamples.

    Returns
    -------
    list of ndarray
        Each resample has the original number of rows (of groups, with ``groups``).

    Examples
    --------
    >>> draws = bootstrap_rows(np.arange(5), n_boot=3, random_seed=0)
    >>> len(draws), [len(d) for d in draws]
    (3, [5, 5, 5])
    >>> runs = np.array(["a", "a", "b", "b"])  # two runs of two checkpoints each
    >>> blocks = bootstrap_rows(np.arange(4), n_boot=3, groups=runs, random_seed=0)
    >>> [sorted(b.tolist()) for b in blocks]
    [[2, 2, 3, 3], [0, 1, 2, 3], [0, 0, 1, 1]]
    """
    rng = np.random.default_rng(random_seed)
    rows = np.asarray(rows)
    if groups is None:
        return [rng.choice(rows, size=len(rows), replace=True) for _ in range(n_boot)]
    labels, inverse = np.unique(np.asarray(groups), return_inverse=True)
    members = [rows[inverse == g] for g in range(len(labels))]
    draws = []
    for _ in range(n_boot):
        picked = rng.integers(0, len(members), size=len(members))
        draws.append(np.concatenate([members[g] for g in picked]))
    return draws


class BootstrapForecaster:
    """Shared fit / forecast / predictive_samples of the deterministic methods.

    Subclasses set ``name`` and implement ``_fit_state(data, rows)`` and
    ``_predict_state(state, data) -> (mean, link_input)``; they may override ``_validate``.

    Parameters
    ----------
    target : str, optional
        The task to forecast; defaults to the table's ``target`` attribute.
    n_boot : int, default 200
        Bootstrap refits over training units for predictive uncertainty; 0 for none.
    residual_noise : bool, default True
        Add resampled residuals of the point fit to the predictive draws (the target's own
        noise); without it the draws describe the fitted curve only.
    random_seed : int, default 0
        Seed of the bootstrap and of the draws.
    min_train_units : int, default 5
        The fewest training units (target observed) the method accepts.
    resample : {"unit", "run"}, default "unit"
        Bootstrap units independently, or whole training runs (all checkpoints of a run
        together; more honest when units are checkpoints, which are not independent).
    """

    name: ClassVar[str] = "bootstrap"

    def __init__(
        self,
        target: str | None = None,
        *,
        n_boot: int = 200,
        residual_noise: bool = True,
        random_seed: int = 0,
        min_train_units: int = 5,
        resample: str = "unit",
    ) -> None:
        if resample not in ("unit", "run"):
            raise MethodInputError(
                f"resample must be 'unit' or 'run', got {resample!r}.",
                hint="use resample='run' to bootstrap whole training runs of checkpoints.",
            )
        self.resample = resample
        self.target = target or ""
        self.n_boot = int(n_boot)
        self.residual_noise = residual_noise
        self.random_seed = random_seed
        self.min_train_units = int(min_train_units)
        self.state_: Any = None

    # -- hooks --------------------------------------------------------------------------
    def _validate(self, data: UnitData) -> None:
        """Check the table has what the method needs (override to add checks)."""

    def _fit_state(self, data: UnitData, rows: np.ndarray) -> Any:  # pragma: no cover
        raise NotImplementedError

    def _predict_state(
        self, state: Any, data: UnitData
    ) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
        raise NotImplementedError

    # -- lifecycle ----------------------------------------------------------------------
    def fit(self, table: Any, **kwargs: Any) -> Self:
        """Fit on the units of ``table`` whose target is observed.

        Parameters
        ----------
        table : BenchmarkTable
            The training table.
        **kwargs
            Accepted for interface compatibility; none are used.

        Returns
        -------
        Self
        """
        self.state_ = None  # a refit starts afresh (methods warm-start from state_)
        data = unit_data(table, self.target or None)
        self.target = data.target
        train = np.flatnonzero(np.isfinite(data.y))
        if len(train) < self.min_train_units:
            raise InsufficientTargetError(data.target, len(train), self.min_train_units)
        self._validate(data)
        self.data_ = data
        self.train_rows_ = train
        self.state_ = self._fit_state(data, train)
        mean, _ = self._predict_state(self.state_, data)
        self.residuals_ = data.y[train] - mean[train]
        self.residuals_ = self.residuals_[np.isfinite(self.residuals_)]
        self.boot_states_ = []
        self.n_boot_failed_ = 0
        groups = data.run[train].astype(str) if self.resample == "run" else None
        if groups is not None and len(set(groups)) < 3:
            warnings.warn(
                f"{self.name}: resample='run' with {len(set(groups))} training run(s) cannot "
                "show run-to-run variation; its intervals are unreliable.",
                RuntimeWarning,
                stacklevel=2,
            )
        resamples = bootstrap_rows(
            train, n_boot=self.n_boot, groups=groups, random_seed=self.random_seed
        )
        for rows in resamples:
            try:
                self.boot_states_.append(self._fit_state(data, rows))
            except (BayesproxyError, np.linalg.LinAlgError, ValueError):
                # a resample can miss what the method needs (e.g. every unit of a family);
                # it is dropped and counted rather than failing the whole fit
                self.n_boot_failed_ += 1
        if self.n_boot and len(self.boot_states_) < max(10, self.n_boot // 2):
            warnings.warn(
                f"{self.name}: only {len(self.boot_states_)} of {self.n_boot} bootstrap refits "
                "succeeded; its intervals are unreliable.",
                RuntimeWarning,
                stacklevel=2,
            )
        return self

    def _check_fitted(self) -> None:
        if self.state_ is None:
            raise NotFittedError(self.name)

    def _forecast_data(self, table: Any | None) -> tuple[UnitData, np.ndarray]:
        """Return the data to forecast and the rows of it to report."""
        self._check_fitted()
        if table is None:
            data = self.data_
            return data, np.flatnonzero(~np.isfinite(data.y))
        data = unit_data(table, self.target, allow_missing_target=True)
        return data, np.arange(len(data.units))

    def _draws(
        self, data: UnitData, rows: np.ndarray, n_samples: int, random_seed: int | None
    ) -> np.ndarray | None:
        if not self.boot_states_:
            return None
        rng = np.random.default_rng(self.random_seed if random_seed is None else random_seed)
        boot = np.stack([self._predict_state(s, data)[0][rows] for s in self.boot_states_])
        pick = rng.integers(0, len(boot), size=n_samples)
        draws = boot[pick].T  # (unit, sample)
        if self.residual_noise and len(self.residuals_):
            draws = draws + rng.choice(self.residuals_, size=draws.shape, replace=True)
            # observed scores live in [0, 1] for accuracies (they may dip below chance)
            if self.data_.kind[self.target] == "accuracy":
                draws = np.clip(draws, 0.0, 1.0)
        return draws

    def forecast(
        self,
        table: Any | None = None,
        *,
        prob: float = 0.9,
        threshold: float | None = None,
    ) -> pd.DataFrame:
        """Forecast the target with bootstrap intervals.

        Parameters
        ----------
        table : BenchmarkTable, optional
            Units to forecast; default: the fitted table's units whose target is missing.
        prob : float, default 0.9
            Central interval probability.
        threshold : float, optional
            Report ``p_above``, the predictive probability of exceeding it.

        Returns
        -------
        pandas.DataFrame
            Columns ``unit, model, step, mean, median, lower, upper, p_above, distance,
            extrapolation``; ``mean`` is the full-data fit, the rest come from the draws.
        """
        data, rows = self._forecast_data(table)
        mean, link_input = self._predict_state(self.state_, data)
        _, train_input = self._predict_state(self.state_, self.data_)
        distance, outside = range_distance(
            _rows(link_input, rows), _rows(train_input, self.train_rows_)
        )
        draws = self._draws(data, rows, 2000, None)
        return make_forecast_frame(
            data.units[rows],
            model=data.model[rows],
            step=data.step[rows],
            mean=mean[rows],
            samples=draws,
            prob=prob,
            threshold=threshold,
            distance=distance,
            extrapolation=outside,
        )

    def predictive_samples(
        self,
        table: Any | None = None,
        *,
        n_samples: int = 1000,
        random_seed: int | None = None,
    ) -> xr.DataArray | None:
        """Bootstrap predictive draws of the target, dims ``(unit, sample)``.

        Parameters
        ----------
        table : BenchmarkTable, optional
            Units to forecast; default: the fitted table's units whose target is missing.
        n_samples : int, default 1000
            Number of draws per unit.
        random_seed : int, optional
            Seed of the draws (default: the forecaster's ``random_seed``).

        Returns
        -------
        xarray.DataArray or None
            None when the forecaster was built with ``n_boot=0`` (no uncertainty).
        """
        data, rows = self._forecast_data(table)
        draws = self._draws(data, rows, n_samples, random_seed)
        if draws is None:
            return None
        return xr.DataArray(
            draws,
            dims=("unit", "sample"),
            coords={"unit": data.units[rows], "sample": np.arange(n_samples)},
            name=self.target,
        )


def _rows(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=float)[rows]
