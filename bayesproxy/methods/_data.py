"""Per-unit arrays the methods work on, read once from a benchmark table's dataset.

The methods only rely on the :class:`~bayesproxy.table.BenchmarkTable` contract (its
``dataset``: ``score``/``stderr`` over ``(unit, task, replicate)`` with the unit and task
coordinates of ARCHITECTURE.md), so an ``xarray.Dataset`` of that shape works too.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayesproxy.errors import UnknownTaskError
from bayesproxy.methods.base import MethodInputError

__all__ = ["UnitData", "as_dataset", "resolve_target", "unit_data"]


def as_dataset(table: Any) -> xr.Dataset:
    """Return the dataset behind a BenchmarkTable (or the Dataset itself)."""
    dataset = getattr(table, "dataset", table)
    if not isinstance(dataset, xr.Dataset) or "score" not in dataset:
        raise MethodInputError(
            f"expected a BenchmarkTable, got {type(table).__name__}.",
            hint="read the data with bayesproxy.read_table(...) and pass the table.",
        )
    return dataset


def resolve_target(dataset: xr.Dataset, target: str | None) -> str:
    """Return the target task: the one given, else the table's ``target`` attribute."""
    name = target or str(dataset.attrs.get("target", "") or "")
    tasks = [str(t) for t in dataset["task"].values]
    if not name:
        raise MethodInputError(
            "no target task was given and the table names none.",
            hint="pass target='TASK' to the forecaster (or read the table with target=...).",
        )
    if name not in tasks:
        raise UnknownTaskError(name, tasks, role="target")
    return name


def _coord(dataset: xr.Dataset, name: str, fill: Any, dtype: Any) -> np.ndarray:
    if name in dataset.coords:
        return np.asarray(dataset[name].values, dtype=dtype)
    return np.full(dataset.sizes["unit"], fill, dtype=dtype)


@dataclass(frozen=True)
class UnitData:
    """The per-unit arrays of one table, replicates averaged for point predictions.

    ``scores`` is unit × task (mean over replicates, NaN skipped); ``rep_sd`` the SD across
    replicates per cell (NaN with fewer than two); ``stderr`` the mean reported standard error.
    """

    target: str
    units: np.ndarray
    model: np.ndarray
    step: np.ndarray
    run: np.ndarray
    family: np.ndarray
    flops: np.ndarray
    params: np.ndarray
    tokens: np.ndarray
    scores: pd.DataFrame
    rep_sd: pd.DataFrame
    stderr: pd.DataFrame
    chance: pd.Series
    kind: pd.Series
    higher_is_better: pd.Series

    @property
    def y(self) -> np.ndarray:
        """The target's score per unit (NaN where not evaluated)."""
        return self.scores[self.target].to_numpy()

    @property
    def target_chance(self) -> float:
        """The target's chance floor."""
        return float(self.chance[self.target])

    def require_tasks(self, tasks: list[str], *, role: str = "proxy") -> None:
        """Raise a bayesproxy error naming the first of ``tasks`` the table lacks."""
        for task in tasks:
            if task not in self.scores.columns:
                raise UnknownTaskError(task, list(self.scores.columns), role=role)


def unit_data(table: Any, target: str | None, *, allow_missing_target: bool = False) -> UnitData:
    """Read a table into :class:`UnitData`.

    With ``allow_missing_target`` a table that lacks the target task (units to forecast)
    gets an all-NaN target column instead of an error.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ds = xr.Dataset(
    ...     {"score": (("unit", "task", "replicate"), np.full((2, 1, 1), 0.5))},
    ...     coords={"unit": ["a", "b"], "task": ["t"], "replicate": ["0"]},
    ... )
    >>> unit_data(ds, "t").y.tolist()
    [0.5, 0.5]
    """
    ds = as_dataset(table)
    tasks_present = [str(t) for t in ds["task"].values]
    if allow_missing_target and target and target not in tasks_present:
        template = ds.isel(task=[0])
        extra = template.assign_coords(
            task=[target], chance=("task", [0.0]), kind=("task", ["accuracy"])
        )
        for name_ in ("score", "stderr", "n_items"):
            if name_ in extra:
                extra[name_] = xr.full_like(extra[name_], np.nan)
        ds = xr.concat(
            [ds, extra], dim="task", data_vars="all", coords="minimal", compat="override"
        )
    name = resolve_target(ds, target)
    units = np.asarray(ds["unit"].values).astype(str)
    tasks = [str(t) for t in ds["task"].values]
    score = ds["score"].transpose("unit", "task", "replicate").values.astype(float)
    if "stderr" in ds:
        stderr = ds["stderr"].transpose("unit", "task", "replicate").values.astype(float)
    else:
        stderr = np.full_like(score, np.nan)
    with warnings.catch_warnings():  # all-NaN cells stay NaN on purpose
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(score, axis=2)
        n_rep = np.sum(np.isfinite(score), axis=2)
        sd = np.where(n_rep >= 2, np.nanstd(score, axis=2, ddof=1), np.nan)
        se = np.nanmean(stderr, axis=2)

    def frame(values: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(values, index=units, columns=tasks)

    n_tasks = len(tasks)
    return UnitData(
        target=name,
        units=units,
        model=_coord(ds, "model", "", object) if "model" in ds.coords else units.astype(object),
        step=_coord(ds, "step", np.nan, float),
        run=_coord(ds, "run", "", object) if "run" in ds.coords else units.astype(object),
        family=_coord(ds, "family", "", object),
        flops=_coord(ds, "flops", np.nan, float),
        params=_coord(ds, "params", np.nan, float),
        tokens=_coord(ds, "tokens", np.nan, float),
        scores=frame(mean),
        rep_sd=frame(sd),
        stderr=frame(se),
        chance=pd.Series(
            np.asarray(ds["chance"].values, float) if "chance" in ds.coords else np.zeros(n_tasks),
            index=tasks,
        ),
        kind=pd.Series(
            np.asarray(ds["kind"].values, object)
            if "kind" in ds.coords
            else np.full(n_tasks, "accuracy", object),
            index=tasks,
        ),
        higher_is_better=pd.Series(
            np.asarray(ds["higher_is_better"].values, bool)
            if "higher_is_better" in ds.coords
            else np.ones(n_tasks, bool),
            index=tasks,
        ),
    )
