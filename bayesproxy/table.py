"""The validated, xarray-backed benchmark table every part of bayesproxy consumes.

A :class:`BenchmarkTable` wraps one :class:`xarray.Dataset` with the variables ``score``,
``stderr`` and ``n_items`` over the dims ``(unit, task, replicate)``; units are
(run, step) pairs with their metadata as coordinates, tasks carry their chance level,
kind and direction. Missing evaluations stay NaN (masked by the models), never dropped.
The object is immutable in spirit: every method returns a new table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayesproxy.errors import (
    ConstantTaskError,
    EmptyTableError,
    InsufficientTargetError,
    TableError,
    UnknownTaskError,
)

__all__ = ["DATA_VARS", "DEFAULT_MIN_TARGET_UNITS", "TASK_COORDS", "UNIT_COORDS", "BenchmarkTable"]

DATA_VARS = ("score", "stderr", "n_items")
UNIT_COORDS = ("model", "step", "run", "family", "params", "tokens", "flops")
TASK_COORDS = ("chance", "kind", "higher_is_better")
KINDS = ("accuracy", "metric")
DEFAULT_MIN_TARGET_UNITS = 3


class BenchmarkTable:
    """A benchmark table: scores of units (models or checkpoints) on tasks, per replicate.

    Build one with :func:`bayesproxy.read_table`, :func:`bayesproxy.read_lm_eval`,
    :meth:`from_dataframe`, :meth:`from_wide` or :func:`bayesproxy.datasets.simulate`;
    the constructor takes an already shaped :class:`xarray.Dataset` and checks it.

    Parameters
    ----------
    dataset : xarray.Dataset
        Variables ``score``, ``stderr``, ``n_items`` with dims ``(unit, task, replicate)``
        and the coordinates of the contract in ``ARCHITECTURE.md``; attr ``target``.
    min_target_units : int, default 3
        When a target is set, the least number of units on which it must be observed.

    Raises
    ------
    TableError
        The dataset does not follow the contract.
    EmptyTableError
        No units or no tasks.
    InsufficientTargetError
        The target is observed on fewer than ``min_target_units`` units.

    Examples
    --------
    >>> import pandas as pd
    >>> from bayesproxy.table import BenchmarkTable
    >>> df = pd.DataFrame({
    ...     "model": ["a", "b", "c", "a", "b", "c"],
    ...     "task": ["x", "x", "x", "y", "y", "y"],
    ...     "score": [0.3, 0.5, 0.7, 0.26, 0.3, 0.6],
    ... })
    >>> table = BenchmarkTable.from_dataframe(df, target="y")
    >>> table.n_units, table.tasks, table.proxies
    (3, ['x', 'y'], ['x'])
    """

    def __init__(
        self, dataset: xr.Dataset, *, min_target_units: int = DEFAULT_MIN_TARGET_UNITS
    ) -> None:
        _check_contract(dataset)
        self._dataset = dataset
        self.min_target_units = int(min_target_units)
        target = self.target
        if target:
            if target not in self.tasks:
                raise UnknownTaskError(target, self.tasks, role="target")
            n_obs = int(self.target_observed.sum())
            if n_obs < self.min_target_units:
                raise InsufficientTargetError(target, n_obs, self.min_target_units)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_dataframe(cls, df: pd.DataFrame, **options: Any) -> BenchmarkTable:
        """Build a table from a long DataFrame (one row per unit x task [x replicate]).

        Parameters
        ----------
        df : pandas.DataFrame
            Columns ``model``, ``task``, ``score`` and optionally ``step``, ``tokens``,
            ``params``, ``flops``, ``family``, ``run``/``run_id``, ``replicate`` (or
            ``seed``/``data_variant``), ``stderr``, ``n_items``, ``chance``, ``subtask``,
            ``metric``, ``n_shot``, ``prompt_format``, ``split``, ``is_fraction``/``kind``,
            ``higher_is_better``.
        **options
            Keyword options of :func:`bayesproxy.io.long.long_to_dataset` (``target``,
            ``proxies``, ``chance``, ``percent``, ``task_name``, ``run_columns``, ...).

        Returns
        -------
        BenchmarkTable

        Examples
        --------
        >>> import pandas as pd
        >>> df = pd.DataFrame({"model": ["a", "b"], "task": ["x", "x"], "score": [0.2, 0.4]})
        >>> BenchmarkTable.from_dataframe(df).n_units
        2
        """
        from bayesproxy.io.long import long_to_dataset

        min_target_units = options.pop("min_target_units", DEFAULT_MIN_TARGET_UNITS)
        dataset = long_to_dataset(df, min_target_units=min_target_units, **options)
        return cls(dataset, min_target_units=min_target_units)

    @classmethod
    def from_wide(
        cls,
        df: pd.DataFrame,
        *,
        id_columns: Sequence[str] | None = None,
        tasks: Sequence[str] | None = None,
        **options: Any,
    ) -> BenchmarkTable:
        """Build a table from a wide DataFrame with one column per task.

        Parameters
        ----------
        df : pandas.DataFrame
            One row per unit (and replicate); a ``model`` column and one numeric column
            per task.
        id_columns : sequence of str, optional
            Columns describing the unit (default: the known metadata columns present:
            ``model``, ``step``, ``run``, ``family``, ``params``, ``tokens``, ``flops``,
            ``replicate``, ``seed``, ...).
        tasks : sequence of str, optional
            Task columns (default: every other column).
        **options
            As for :meth:`from_dataframe`.

        Returns
        -------
        BenchmarkTable

        Examples
        --------
        >>> import pandas as pd
        >>> wide = pd.DataFrame({"model": ["a", "b", "c"], "x": [0.3, 0.4, 0.5],
        ...                      "y": [0.25, 0.25, 0.6]})
        >>> BenchmarkTable.from_wide(wide).tasks
        ['x', 'y']
        """
        from bayesproxy.io.wide import wide_to_long

        long = wide_to_long(df, id_columns=id_columns, tasks=tasks)
        return cls.from_dataframe(long, **options)

    # ------------------------------------------------------------------ accessors
    @property
    def dataset(self) -> xr.Dataset:
        """The backing dataset (a copy is cheap; do not modify it in place)."""
        return self._dataset

    @property
    def target(self) -> str:
        """The target task's name, ``""`` when none is set."""
        return str(self._dataset.attrs.get("target", ""))

    @property
    def tasks(self) -> list[str]:
        """All task names, target included."""
        return [str(t) for t in self._dataset["task"].values]

    @property
    def proxies(self) -> list[str]:
        """Task names other than the target."""
        return [t for t in self.tasks if t != self.target]

    @property
    def n_units(self) -> int:
        """Number of units (models or checkpoints)."""
        return int(self._dataset.sizes["unit"])

    @property
    def n_tasks(self) -> int:
        """Number of tasks, target included."""
        return int(self._dataset.sizes["task"])

    @property
    def n_replicates(self) -> int:
        """Size of the replicate dim (1 when the table has no replicates)."""
        return int(self._dataset.sizes["replicate"])

    @property
    def score(self) -> xr.DataArray:
        """Scores, dims ``(unit, task, replicate)``; NaN = not evaluated."""
        return self._dataset["score"]

    @property
    def units(self) -> pd.DataFrame:
        """Unit metadata: one row per unit, indexed by unit label."""
        ds = self._dataset
        frame = pd.DataFrame({name: ds[name].values for name in UNIT_COORDS})
        frame.index = pd.Index([str(u) for u in ds["unit"].values], name="unit")
        return frame

    @property
    def task_info(self) -> pd.DataFrame:
        """Task metadata (chance, kind, higher_is_better), indexed by task name."""
        ds = self._dataset
        frame = pd.DataFrame({name: ds[name].values for name in TASK_COORDS})
        frame.index = pd.Index(self.tasks, name="task")
        return frame

    @property
    def chance(self) -> pd.Series:
        """Chance level per task (0 for metrics with no floor)."""
        return pd.Series(self._dataset["chance"].values, index=self.tasks, name="chance")

    @property
    def observed(self) -> xr.DataArray:
        """Whether each (unit, task) has at least one non-missing replicate."""
        return self._dataset["score"].notnull().any("replicate")

    @property
    def target_observed(self) -> pd.Series:
        """Whether the target is observed on each unit (in any replicate).

        Raises
        ------
        TableError
            When no target is set.
        """
        if not self.target:
            raise TableError("the table has no target.\nHint: call table.with_target(name) first.")
        values = self.observed.sel(task=self.target).values
        return pd.Series(values, index=self.units.index, name="target_observed")

    # ------------------------------------------------------------------ transformations
    def with_target(
        self, name: str | None, *, min_target_units: int | None = None
    ) -> BenchmarkTable:
        """Return a copy with ``name`` as target (``None`` or ``""`` clears it).

        Parameters
        ----------
        name : str or None
            A task of the table.
        min_target_units : int, optional
            Override the least number of units the target must be observed on.

        Returns
        -------
        BenchmarkTable

        Raises
        ------
        UnknownTaskError
            ``name`` is not a task (close names are suggested).
        InsufficientTargetError
            The target is observed on too few units.

        Examples
        --------
        >>> from bayesproxy.datasets import simulate
        >>> table = simulate(n_families=2, random_seed=1).table
        >>> table.with_target("proxy_0").target
        'proxy_0'
        """
        name = name or ""
        if name and name not in self.tasks:
            raise UnknownTaskError(name, self.tasks, role="target")
        ds = self._dataset.copy()
        ds.attrs = {**ds.attrs, "target": name}
        minimum = self.min_target_units if min_target_units is None else min_target_units
        return BenchmarkTable(ds, min_target_units=minimum)

    def select(
        self,
        *,
        units: Sequence[str] | np.ndarray | pd.Series | None = None,
        tasks: Sequence[str] | None = None,
    ) -> BenchmarkTable:
        """Return a sub-table of some units and/or tasks.

        Parameters
        ----------
        units : sequence of str or boolean mask, optional
            Unit labels to keep (in that order), or a boolean mask over units.
        tasks : sequence of str, optional
            Task names to keep; when the target is not among them the result has no target.

        Returns
        -------
        BenchmarkTable
            The target's minimum-observation check is not re-applied to sub-tables, so a
            test split may hold few (or no) target observations.

        Raises
        ------
        UnknownTaskError
            A task name is not in the table.
        EmptyTableError
            The selection is empty.

        Examples
        --------
        >>> from bayesproxy.datasets import simulate
        >>> table = simulate(n_families=2, random_seed=1).table
        >>> table.select(tasks=["proxy_0", "target"]).proxies
        ['proxy_0']
        """
        ds = self._dataset
        if units is not None:
            labels = [str(u) for u in ds["unit"].values]
            arr = np.asarray(units)
            if arr.dtype == bool:
                if arr.shape != (len(labels),):
                    raise TableError(
                        f"a boolean unit mask must have length {len(labels)}, got {arr.shape}."
                        "\nHint: build the mask from table.units."
                    )
                idx = np.flatnonzero(arr)
            else:
                position = {u: i for i, u in enumerate(labels)}
                wanted = [str(u) for u in arr.ravel()]
                unknown = [u for u in wanted if u not in position]
                if unknown:
                    raise UnknownTaskError(unknown[0], labels, role="unit")
                idx = np.array([position[u] for u in wanted], dtype=int)
            if idx.size == 0:
                raise EmptyTableError("the unit selection is empty")
            ds = ds.isel(unit=idx)
        if tasks is not None:
            tasks = [str(t) for t in tasks]
            for t in tasks:
                if t not in self.tasks:
                    raise UnknownTaskError(t, self.tasks)
            if not tasks:
                raise EmptyTableError("the task selection is empty")
            ds = ds.sel(task=tasks)
            if self.target not in tasks:
                ds.attrs = {**ds.attrs, "target": ""}
        return BenchmarkTable(ds, min_target_units=0)

    def drop_constant_tasks(self) -> BenchmarkTable:
        """Return a copy without tasks that have fewer than two distinct scores.

        Examples
        --------
        >>> from bayesproxy.datasets import simulate
        >>> table = simulate(n_families=2, random_seed=1).table
        >>> table.drop_constant_tasks().n_tasks == table.n_tasks
        True
        """
        constant = constant_tasks(self._dataset)
        if not constant:
            return self
        keep = [t for t in self.tasks if t not in constant]
        if not keep:
            raise EmptyTableError(f"every task is constant ({constant})")
        return self.select(tasks=keep)

    # ------------------------------------------------------------------ output
    def to_dataframe(self, *, dropna: bool = True) -> pd.DataFrame:
        """Return the long form: one row per (unit, task, replicate).

        Parameters
        ----------
        dropna : bool, default True
            Drop cells whose score is missing (not evaluated).

        Returns
        -------
        pandas.DataFrame
            Columns ``unit, model, step, run, family, params, tokens, flops, task,
            replicate, score, stderr, n_items, chance, kind, higher_is_better``; reading it
            back with :meth:`from_dataframe` gives an equal table.

        Examples
        --------
        >>> from bayesproxy.datasets import simulate
        >>> df = simulate(n_families=2, random_seed=1).table.to_dataframe()
        >>> list(df.columns[:3])
        ['unit', 'model', 'step']
        """
        ds = self._dataset
        n_u, n_t, n_r = ds.sizes["unit"], ds.sizes["task"], ds.sizes["replicate"]
        u_idx, t_idx, r_idx = (a.ravel() for a in np.indices((n_u, n_t, n_r)))
        frame = pd.DataFrame({"unit": ds["unit"].values.astype(str)[u_idx]})
        for name in UNIT_COORDS:
            frame[name] = ds[name].values[u_idx]
        frame["task"] = ds["task"].values.astype(str)[t_idx]
        frame["replicate"] = ds["replicate"].values.astype(str)[r_idx]
        for name in DATA_VARS:
            frame[name] = ds[name].values.ravel()
        for name in TASK_COORDS:
            frame[name] = ds[name].values[t_idx]
        if dropna:
            frame = frame[frame["score"].notna()].reset_index(drop=True)
        return frame

    def summary(self) -> pd.DataFrame:
        """Per-task summary: kind, chance, direction, coverage and score range.

        Returns
        -------
        pandas.DataFrame
            Indexed by task, with columns ``kind, chance, higher_is_better, role,
            n_observed, missing_share, n_replicates, mean, min, max``.

        Examples
        --------
        >>> from bayesproxy.datasets import simulate
        >>> simulate(n_families=2, random_seed=1).table.summary().loc["target", "role"]
        'target'
        """
        ds = self._dataset
        score = ds["score"]
        info = self.task_info
        observed = self.observed
        info["role"] = ["target" if t == self.target else "proxy" for t in self.tasks]
        info["n_observed"] = observed.sum("unit").values.astype(int)
        info["missing_share"] = 1.0 - observed.mean("unit").values
        info["n_replicates"] = score.notnull().any("unit").sum("replicate").values.astype(int)
        with np.errstate(all="ignore"):
            flat = score.values.transpose(1, 0, 2).reshape(self.n_tasks, -1)
            has = np.isfinite(flat).any(axis=1)
            safe = np.where(np.isfinite(flat), flat, 0.0)
            count = np.isfinite(flat).sum(axis=1)
            info["mean"] = np.where(has, safe.sum(axis=1) / np.maximum(count, 1), np.nan)
            info["min"] = np.where(
                has, np.where(np.isfinite(flat), flat, np.inf).min(axis=1), np.nan
            )
            info["max"] = np.where(
                has, np.where(np.isfinite(flat), flat, -np.inf).max(axis=1), np.nan
            )
        return info

    def __repr__(self) -> str:
        ds = self._dataset
        steps = np.isfinite(ds["step"].values).any()
        runs = len(np.unique(ds["run"].values))
        missing = 1.0 - float(self.observed.mean()) if self.n_units and self.n_tasks else 0.0
        target = f"target={self.target!r}" if self.target else "no target"
        return (
            f"<BenchmarkTable: {self.n_units} units ({runs} runs{', with steps' if steps else ''})"
            f" x {self.n_tasks} tasks x {self.n_replicates} replicates; {target}; "
            f"{missing:.0%} of (unit, task) cells missing>"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BenchmarkTable):
            return NotImplemented
        return self._dataset.identical(other._dataset)

    __hash__ = None  # type: ignore[assignment]  # mutable-looking container; no hashing


# ---------------------------------------------------------------------- helpers
def constant_tasks(dataset: xr.Dataset) -> list[str]:
    """Tasks with fewer than two distinct observed scores across units and replicates.

    Parameters
    ----------
    dataset : xarray.Dataset
        A dataset following the table contract.

    Returns
    -------
    list of str

    Examples
    --------
    >>> from bayesproxy.datasets import simulate
    >>> constant_tasks(simulate(n_families=2, random_seed=1).table.dataset)
    []
    """
    score = dataset["score"].values
    out = []
    for j, task in enumerate(dataset["task"].values):
        values = score[:, j, :]
        values = values[np.isfinite(values)]
        if values.size == 0 or np.ptp(values) == 0.0:
            out.append(str(task))
    return out


def check_constant(dataset: xr.Dataset, *, drop: bool) -> xr.Dataset:
    """Raise :class:`ConstantTaskError` for constant tasks, or drop them.

    Examples
    --------
    >>> from bayesproxy.datasets import simulate
    >>> ds = simulate(n_families=2, random_seed=1).table.dataset
    >>> check_constant(ds, drop=False).sizes["task"] == ds.sizes["task"]
    True
    """
    constant = constant_tasks(dataset)
    if not constant:
        return dataset
    target = str(dataset.attrs.get("target", ""))
    if not drop or target in constant:
        raise ConstantTaskError(constant)
    keep = [str(t) for t in dataset["task"].values if str(t) not in constant]
    if not keep:
        raise EmptyTableError(f"every task is constant ({constant})")
    return dataset.sel(task=keep)


def make_dataset(
    *,
    score: np.ndarray,
    units: pd.DataFrame,
    tasks: pd.DataFrame,
    replicates: Sequence[str],
    stderr: np.ndarray | None = None,
    n_items: np.ndarray | None = None,
    target: str = "",
    attrs: Mapping[str, Any] | None = None,
) -> xr.Dataset:
    """Assemble a contract-conforming dataset from arrays and metadata frames.

    Parameters
    ----------
    score : ndarray, shape (unit, task, replicate)
    units : pandas.DataFrame
        Indexed by unit label; columns among ``model, step, run, family, params, tokens,
        flops`` (missing ones get defaults: ``run`` = model, ``family`` = "", NaN numbers).
    tasks : pandas.DataFrame
        Indexed by task name; columns ``chance``, ``kind``, ``higher_is_better``
        (defaults 0, "accuracy", True).
    replicates : sequence of str
    stderr, n_items : ndarray, optional
        Same shape as ``score``; NaN when omitted.
    target : str
    attrs : mapping, optional
        Extra dataset attributes.

    Returns
    -------
    xarray.Dataset

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> units = pd.DataFrame({"model": ["a", "b"]}, index=["a", "b"])
    >>> tasks = pd.DataFrame(index=["x"])
    >>> ds = make_dataset(score=np.array([[[0.1]], [[0.2]]]), units=units, tasks=tasks,
    ...                   replicates=["0"])
    >>> dict(ds.sizes)
    {'unit': 2, 'task': 1, 'replicate': 1}
    """
    score = np.asarray(score, dtype=float)
    shape = score.shape
    stderr = np.full(shape, np.nan) if stderr is None else np.asarray(stderr, dtype=float)
    n_items = np.full(shape, np.nan) if n_items is None else np.asarray(n_items, dtype=float)
    n_u = len(units)
    model = (
        units["model"].astype(str).to_numpy()
        if "model" in units
        else units.index.astype(str).to_numpy()
    )
    coords: dict[str, Any] = {
        "unit": ("unit", np.asarray(units.index.astype(str), dtype=object)),
        "model": ("unit", np.asarray(model, dtype=object)),
        "step": ("unit", _float_col(units, "step", n_u)),
        "run": (
            "unit",
            np.asarray(units["run"].astype(str) if "run" in units else model, dtype=object),
        ),
        "family": (
            "unit",
            np.asarray(
                units["family"].fillna("").astype(str) if "family" in units else [""] * n_u,
                dtype=object,
            ),
        ),
        "params": ("unit", _float_col(units, "params", n_u)),
        "tokens": ("unit", _float_col(units, "tokens", n_u)),
        "flops": ("unit", _float_col(units, "flops", n_u)),
        "task": ("task", np.asarray(tasks.index.astype(str), dtype=object)),
        "chance": ("task", _float_col(tasks, "chance", len(tasks), default=0.0)),
        "kind": (
            "task",
            np.asarray(
                tasks["kind"] if "kind" in tasks else ["accuracy"] * len(tasks), dtype=object
            ),
        ),
        "higher_is_better": (
            "task",
            np.asarray(
                tasks["higher_is_better"] if "higher_is_better" in tasks else [True] * len(tasks),
                dtype=bool,
            ),
        ),
        "replicate": ("replicate", np.asarray([str(r) for r in replicates], dtype=object)),
    }
    dims = ("unit", "task", "replicate")
    ds = xr.Dataset(
        {"score": (dims, score), "stderr": (dims, stderr), "n_items": (dims, n_items)},
        coords=coords,
        attrs={**(attrs or {}), "target": target},
    )
    return ds


def _float_col(frame: pd.DataFrame, name: str, n: int, default: float = np.nan) -> np.ndarray:
    if name not in frame:
        return np.full(n, default, dtype=float)
    return pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float, na_value=default)


def _check_contract(ds: object) -> None:
    """Check dims, variables and coordinates; raise TableError naming what is wrong."""
    if not isinstance(ds, xr.Dataset):
        raise TableError(
            f"expected an xarray.Dataset, got {type(ds).__name__}."
            "\nHint: build tables with bayesproxy.read_table or BenchmarkTable.from_dataframe."
        )
    dims = ("unit", "task", "replicate")
    problems = []
    for name in DATA_VARS:
        if name not in ds.data_vars:
            problems.append(f"variable {name!r} is missing")
        elif ds[name].dims != dims:
            problems.append(f"variable {name!r} has dims {ds[name].dims}, expected {dims}")
    for name in (*dims, *UNIT_COORDS, *TASK_COORDS):
        if name not in ds.coords:
            problems.append(f"coordinate {name!r} is missing")
    if problems:
        raise TableError(
            "the dataset does not follow the BenchmarkTable contract: "
            + "; ".join(problems)
            + ".\nHint: see the contract table in ARCHITECTURE.md, or use make_dataset()."
        )
    if ds.sizes["unit"] == 0 or ds.sizes["task"] == 0 or ds.sizes["replicate"] == 0:
        raise EmptyTableError(f"the table has no cells (sizes {dict(ds.sizes)})")
    for dim in dims:
        labels = pd.Index(ds[dim].values)
        if labels.has_duplicates:
            dup = labels[labels.duplicated()].unique().tolist()[:5]
            raise TableError(
                f"{dim} labels are not unique: {dup}.\nHint: give each {dim} a distinct label."
            )
    kinds = set(np.asarray(ds["kind"].values).tolist())
    if not kinds <= set(KINDS):
        raise TableError(
            f"task kinds must be in {KINDS}, got {sorted(kinds - set(KINDS))}."
            "\nHint: use 'accuracy' for fractions in [0, 1] and 'metric' for losses, ranks."
        )
    chance = np.asarray(ds["chance"].values, dtype=float)
    bad = ~((chance >= 0) & (chance < 1))
    if bad.any():
        names = np.asarray(ds["task"].values)[bad].tolist()
        raise TableError(
            f"chance levels must lie in [0, 1); tasks {names[:5]} have {chance[bad][:5].tolist()}."
            "\nHint: pass chance={task: level} with fractions, e.g. 0.25 for 4-way choice."
        )
