"""Run forecasters over the folds of one or more splits and score them, in parallel.

Each (method, fold) pair is one job: a picklable description (the method's registry name,
its options, the fold's tables) that any :class:`concurrent.futures.Executor` can run, a
local process pool by default or a Dask cluster through ``Client.get_executor()``. A job
that fails is kept as an ``error`` row of the results, never silently dropped.
"""

from __future__ import annotations

import math
import time
import traceback
import warnings
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from bayesproxy.backtest import metrics as m
from bayesproxy.backtest._tables import dataset_of, with_dataset
from bayesproxy.backtest.errors import BacktestError
from bayesproxy.backtest.splits import Fold, Split, parse_split

if TYPE_CHECKING:
    from bayesproxy.table import BenchmarkTable

__all__ = ["RESULT_COLUMNS", "BacktestResult", "MethodSpec", "backtest", "mask_target"]

#: Columns of :attr:`BacktestResult.results`.
RESULT_COLUMNS = ("method", "split", "fold", "metric", "value", "n_test", "error")
#: Metrics where a higher value is better (the rest: lower is better, or no order).
HIGHER_IS_BETTER = {"spearman", "kendall", "pairwise_accuracy", "elpd"}


@dataclass(frozen=True)
class MethodSpec:
    """A forecaster to backtest, by registry name, with its options.

    Parameters
    ----------
    name : str
        A name from :func:`bayesproxy.methods.available_methods`, or
        ``"package.module:Class"`` for a forecaster of your own (importable by the workers).
    options : mapping, optional
        Keyword arguments of the forecaster's constructor (``target`` is added).
    fit_options : mapping, optional
        Keyword arguments of its ``fit`` (e.g. ``draws=`` for the Bayesian model).
    label : str, optional
        Name in the results (default: ``name``); tells variants of one method apart.

    Examples
    --------
    >>> MethodSpec("proxy-bayes", fit_options={"draws": 200}, label="bayes-quick").label
    'bayes-quick'
    """

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)
    fit_options: Mapping[str, Any] = field(default_factory=dict)
    label: str = ""

    def __post_init__(self) -> None:
        if not self.label:
            object.__setattr__(self, "label", self.name)


@dataclass(frozen=True)
class _Job:
    method: MethodSpec
    target: str
    fold: Fold
    prob_levels: tuple[float, ...]
    n_samples: int
    random_seed: int


@dataclass
class _JobOutput:
    rows: list[dict[str, Any]]
    predictions: pd.DataFrame | None
    seconds: float


@dataclass
class BacktestResult:
    """The scores and forecasts of a backtest.

    Attributes
    ----------
    results : pandas.DataFrame
        Tidy scores, one row per (method, split, fold, metric) with the columns
        :data:`RESULT_COLUMNS`; a failed job is one row with ``metric == "error"`` and the
        message in ``error``; warnings a fit raised (e.g. poor MCMC convergence) are rows
        with ``metric == "warning"``, the message in ``error``.
    predictions : pandas.DataFrame
        One row per (method, split, fold, unit): the forecast frame's columns plus
        ``actual`` (the held-out target, NaN when not observed).
    target : str
        The forecast task.
    """

    results: pd.DataFrame
    predictions: pd.DataFrame
    target: str

    @property
    def warnings(self) -> pd.DataFrame:
        """The warnings fits raised: method, split, fold and message."""
        rows = self.results[self.results["metric"] == "warning"]
        return rows[["method", "split", "fold", "error"]].reset_index(drop=True)

    @property
    def errors(self) -> pd.DataFrame:
        """The failed jobs: method, split, fold and message."""
        rows = self.results[self.results["metric"] == "error"]
        return rows[["method", "split", "fold", "error"]].reset_index(drop=True)

    def pooled(self) -> pd.DataFrame:
        """Point metrics over all held-out units of a split at once, per method.

        Per-fold rank metrics are undefined when a fold holds one unit (leave-one-unit-out)
        and only rank within a family (leave-one-family-out); pooling every fold's
        held-out forecasts answers "does it order the held-out units right overall?".

        Returns
        -------
        pandas.DataFrame
            One row per (method, split); columns ``n_units`` and the point metrics.

        Examples
        --------
        >>> result.pooled()  # doctest: +SKIP
        """
        rows = []
        preds = self.predictions
        for (method, split), group in preds.groupby(["method", "split"], sort=False):
            point, actual = group["mean"].to_numpy(float), group["actual"].to_numpy(float)
            row = {"method": method, "split": split, "n_units": int(np.isfinite(actual).sum())}
            row |= {name: fn(point, actual) for name, (fn, _) in m.POINT_METRICS.items()}
            rows.append(row)
        return pd.DataFrame(rows, columns=["method", "split", "n_units", *m.POINT_METRICS])

    def summary(self, *, by: Sequence[str] = ("method", "split")) -> pd.DataFrame:
        """Metrics averaged over folds, weighted by each fold's number of scored units.

        ``elpd`` is summed instead (it is a sum over held-out units by definition).

        Parameters
        ----------
        by : sequence of str, default ("method", "split")
            Grouping columns.

        Returns
        -------
        pandas.DataFrame
            One row per group, one column per metric.

        Examples
        --------
        >>> result.summary()  # doctest: +SKIP
        """
        scores = self.results[~self.results["metric"].isin(["error", "warning"])].copy()
        if scores.empty:
            return pd.DataFrame(columns=[*by])
        finite = np.isfinite(scores["value"]) & (scores["n_test"] > 0)
        scores["w"] = np.where(finite, scores["n_test"], 0.0)
        scores["wv"] = np.where(finite, scores["value"], 0.0) * scores["w"]
        is_sum = scores["metric"] == "elpd"
        scores.loc[is_sum, "wv"] = np.where(finite[is_sum], scores.loc[is_sum, "value"], 0.0)
        grouped = scores.groupby([*by, "metric"], sort=False)
        agg = grouped[["wv", "w"]].sum()
        value = agg["wv"] / agg["w"].where(agg["w"] > 0)
        sums = agg.index.get_level_values("metric") == "elpd"
        value[sums] = agg["wv"][sums].where(agg["w"][sums] > 0)
        table = value.rename("value").reset_index()
        return (
            table.pivot_table(
                index=list(by), columns="metric", values="value", sort=False, dropna=False
            )
            .reset_index()
            .rename_axis(columns=None)
        )


def mask_target(table: BenchmarkTable, target: str) -> BenchmarkTable:
    """Return a copy of ``table`` with every score of ``target`` set to NaN.

    Parameters
    ----------
    table : BenchmarkTable
        Any table with the task ``target``.
    target : str
        The task to hide.

    Returns
    -------
    BenchmarkTable
        A new table; ``table`` is unchanged.

    Examples
    --------
    >>> masked = mask_target(table, "target")  # doctest: +SKIP
    """
    ds = dataset_of(table).copy(deep=True)
    for var in ("score", "stderr", "n_items"):
        if var in ds:
            ds[var].loc[{"task": target}] = np.nan
    return with_dataset(table, ds)


def _actual(test: BenchmarkTable, target: str, units: Sequence[str]) -> np.ndarray:
    """Observed target per unit (mean over replicates; NaN where unobserved)."""
    score = dataset_of(test)["score"].sel(task=target)
    values = score.values.astype(float)
    with np.errstate(all="ignore"):
        observed = np.isfinite(values).any(axis=-1)
        mean = np.where(
            observed,
            np.nansum(values, axis=-1) / np.maximum(np.isfinite(values).sum(axis=-1), 1),
            np.nan,
        )
    lookup = dict(zip(np.asarray(score["unit"].values).astype(str), mean, strict=True))
    return np.array([lookup.get(str(u), np.nan) for u in units], dtype=float)


def _score(
    frame: pd.DataFrame,
    actual: np.ndarray,
    samples: np.ndarray | None,
    log_density: np.ndarray | None,
    prob_levels: Sequence[float],
) -> dict[str, float]:
    point = frame["mean"].to_numpy(dtype=float)
    out = {name: fn(point, actual) for name, (fn, _) in m.POINT_METRICS.items()}
    for p in prob_levels:
        pct = f"{round(100 * p):d}"
        out[f"coverage_{pct}"] = m.interval_coverage(samples, actual, prob=p)
        out[f"width_{pct}"] = m.interval_width(samples, actual, prob=p)
    # a point forecast's CRPS is its absolute error (a distribution with all mass at a point)
    out["crps"] = m.crps(samples, actual) if samples is not None else m.crps_point(point, actual)
    out["elpd"] = m.elpd(log_density)
    return out


def _run_job(job: _Job) -> _JobOutput:
    """Fit one method on one fold's training units and score it on the test units."""
    start = time.perf_counter()
    fold, spec = job.fold, job.method
    base = {"method": spec.label, "split": fold.split, "fold": fold.name}
    n_test = int(dataset_of(fold.test).sizes["unit"])
    caught: list[warnings.WarningMessage] = []
    try:
        forecaster = _method_class(spec.name)(target=job.target, **dict(spec.options))
        # a fit's warnings (e.g. poor MCMC convergence) belong with its scores
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            forecaster.fit(fold.train, **dict(spec.fit_options))
        hidden = mask_target(fold.test, job.target)
        frame = forecaster.forecast(hidden, prob=max(job.prob_levels))
        units = frame["unit"].astype(str).tolist()
        actual = _actual(fold.test, job.target, units)
        draws = forecaster.predictive_samples(
            hidden, n_samples=job.n_samples, random_seed=job.random_seed
        )
        samples = None
        if draws is not None:
            samples = np.asarray(draws.sel(unit=units).transpose("unit", ...).values, dtype=float)
        log_density = None
        if callable(getattr(forecaster, "log_predictive_density", None)):
            # the method's own likelihood, evaluated at the held-out target values
            log_density = _lpd_for(forecaster, fold.test, units)
        scores = _score(frame, actual, samples, log_density, job.prob_levels)
    except Exception as error:
        # keep where it failed: the innermost frame of the traceback
        where = traceback.extract_tb(error.__traceback__)[-1]
        message = (
            f"{type(error).__name__}: {error} "
            f"(at {where.filename.rsplit('/', 1)[-1]}:{where.lineno})"
        )
        row = {**base, "metric": "error", "value": math.nan, "n_test": n_test, "error": message}
        return _JobOutput([row], None, time.perf_counter() - start)
    n_scored = int(np.isfinite(actual).sum())
    rows = [
        {**base, "metric": k, "value": v, "n_test": n_scored, "error": ""}
        for k, v in scores.items()
    ]
    rows.append(
        {
            **base,
            "metric": "fit_seconds",
            "value": time.perf_counter() - start,
            "n_test": n_scored,
            "error": "",
        }
    )
    seen = dict.fromkeys(
        f"{w.category.__name__}: {str(w.message).splitlines()[0]}"
        for w in caught
        if not issubclass(w.category, DeprecationWarning | PendingDeprecationWarning)
    )
    rows += [
        {**base, "metric": "warning", "value": math.nan, "n_test": n_scored, "error": text}
        for text in seen
    ]
    preds = frame.assign(actual=actual, **base)
    return _JobOutput(rows, preds, time.perf_counter() - start)


def _method_class(name: str) -> type:
    """Resolve a registry name, or ``"package.module:Class"`` for a forecaster of your own."""
    if ":" in name:
        import importlib

        module, _, attribute = name.partition(":")
        return getattr(importlib.import_module(module), attribute)
    from bayesproxy.methods.base import get_method_class

    return get_method_class(name)


def _lpd_for(forecaster: Any, test: BenchmarkTable, units: Sequence[str]) -> np.ndarray:
    lpd = forecaster.log_predictive_density(test)
    if hasattr(lpd, "sel"):  # an xarray object over units
        return np.asarray(lpd.sel(unit=list(units)).values, dtype=float)
    if isinstance(lpd, pd.Series):
        return lpd.reindex(units).to_numpy(dtype=float)
    return np.asarray(lpd, dtype=float)


def _as_specs(
    methods: Iterable[str | MethodSpec | tuple[str, Mapping[str, Any]]],
) -> list[MethodSpec]:
    specs = []
    for item in methods:
        if isinstance(item, MethodSpec):
            specs.append(item)
        elif isinstance(item, str):
            specs.append(MethodSpec(item))
        elif isinstance(item, tuple) and len(item) == 2:
            specs.append(MethodSpec(item[0], options=dict(item[1])))
        else:
            raise BacktestError(
                f"cannot read method {item!r}.",
                hint="give a registry name, a (name, options) pair or a MethodSpec.",
            )
    if not specs:
        raise BacktestError("no methods to backtest.", hint="pass methods=['compute-sigmoid'].")
    labels = [s.label for s in specs]
    dupes = sorted({x for x in labels if labels.count(x) > 1})
    if dupes:
        raise BacktestError(
            f"methods {dupes} appear more than once.",
            hint="give variants of one method distinct labels (MethodSpec).",
        )
    from bayesproxy.methods.base import available_methods

    unknown = [s.name for s in specs if ":" not in s.name and s.name not in available_methods()]
    if unknown:
        raise BacktestError(
            f"unknown method(s) {unknown}.", hint=f"choose among {available_methods()}."
        )
    return specs


def _progress(total: int, show: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        disable=not show,
        transient=False,
    )


def backtest(
    table: BenchmarkTable,
    *,
    target: str,
    methods: Iterable[str | MethodSpec | tuple[str, Mapping[str, Any]]],
    splits: Iterable[Split | str],
    executor: Executor | Literal["serial"] | None = None,
    prob_levels: Sequence[float] = (0.5, 0.8, 0.9),
    n_samples: int = 1000,
    random_seed: int = 0,
    progress: bool = True,
) -> BacktestResult:
    """Fit every method on every fold of every split and score its held-out forecasts.

    Parameters
    ----------
    table : BenchmarkTable
        The full table; splits carve it into training and test units.
    target : str
        The task to forecast (hidden from forecasters on the test units).
    methods : iterable
        Registry names (``"compute-sigmoid"``), ``(name, options)`` pairs or
        :class:`MethodSpec` objects.
    splits : iterable
        Split objects from :mod:`bayesproxy.backtest.splits` or their text forms
        (``"compute:8.4e22"``, ``"family"``, ...).
    executor : Executor, "serial" or None
        Where jobs run: None (default) a local process pool with 2 workers; ``"serial"``
        in this process; or any :class:`concurrent.futures.Executor`, e.g. a Dask
        ``Client(...).get_executor()`` (left running: the caller owns it).
    prob_levels : sequence of float, default (0.5, 0.8, 0.9)
        Central interval masses scored for coverage and width.
    n_samples : int, default 1000
        Predictive samples drawn per held-out unit (methods with uncertainty).
    random_seed : int, default 0
        Seed of the predictive sampling of every job.
    progress : bool, default True
        Show a progress bar on the terminal.

    Returns
    -------
    BacktestResult

    Examples
    --------
    >>> from bayesproxy.datasets import simulate  # doctest: +SKIP
    >>> table = simulate(seed=1).table  # doctest: +SKIP
    >>> result = backtest(table, target=table.target, methods=["compute-sigmoid"],
    ...                   splits=["compute:1e22", "family"], executor="serial")  # doctest: +SKIP
    >>> result.summary()  # doctest: +SKIP
    """
    tasks = [str(t) for t in dataset_of(table)["task"].values]
    if target not in tasks:
        from bayesproxy.errors import UnknownTaskError

        raise UnknownTaskError(target, tasks, role="target")
    levels = tuple(float(p) for p in prob_levels)
    bad = [p for p in levels if not 0 < p < 1]
    if bad or not levels:
        raise BacktestError(
            f"prob_levels must lie in (0, 1), got {list(prob_levels)}.",
            hint="e.g. prob_levels=(0.5, 0.8, 0.9).",
        )
    specs = _as_specs(methods)
    split_objs = [parse_split(s) if isinstance(s, str) else s for s in splits]
    if not split_objs:
        raise BacktestError("no splits given.", hint="pass splits=['compute:8.4e22'].")
    folds = [fold for s in split_objs for fold in s.split(table, target=target)]
    jobs = [
        _Job(spec, target, fold, levels, int(n_samples), int(random_seed))
        for fold in folds
        for spec in specs
    ]

    outputs: list[_JobOutput] = []
    with _progress(len(jobs), progress) as bar:
        task = bar.add_task(f"backtest {target}", total=len(jobs))
        if executor == "serial":
            for job in jobs:
                outputs.append(_run_job(job))
                bar.advance(task)
        else:
            owned = executor is None
            pool = _default_pool() if owned else executor
            if not isinstance(pool, Executor):
                raise BacktestError(
                    f"executor must be a concurrent.futures.Executor, 'serial' or None, "
                    f"got {type(executor).__name__}.",
                    hint="e.g. ProcessPoolExecutor(2) or distributed.Client().get_executor().",
                )
            try:
                futures: list[Future] = [pool.submit(_run_job, job) for job in jobs]
                for fut in as_completed(futures):
                    outputs.append(fut.result())
                    bar.advance(task)
            finally:
                if owned:
                    pool.shutdown(wait=True, cancel_futures=True)
    # results in the order the user listed methods and splits, folds in split order
    order = {
        "method": [spec.label for spec in specs],
        "split": list(dict.fromkeys(f.split for f in folds)),
        "fold": list(dict.fromkeys(f.name for f in folds)),
    }
    return _collect(outputs, target, order)


def _default_pool() -> ProcessPoolExecutor:
    import multiprocessing

    # spawn: forking a process that holds threads (BLAS, numba, rich) can deadlock
    return ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn"))


def _ordered(frame: pd.DataFrame, order: Mapping[str, list[str]], extra: list[str]) -> pd.DataFrame:
    keys = [pd.Categorical(frame[c], categories=order[c], ordered=True) for c in order]
    helper = pd.DataFrame({f"_{i}": k for i, k in enumerate(keys)}, index=frame.index)
    helper = helper.assign(**{f"_x{j}": frame[c] for j, c in enumerate(extra)})
    return frame.loc[helper.sort_values(list(helper.columns), kind="stable").index]


def _collect(
    outputs: list[_JobOutput], target: str, order: Mapping[str, list[str]]
) -> BacktestResult:
    rows = [row for out in outputs for row in out.rows]
    results = pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
    results = _ordered(results, order, ["metric"])
    frames = [out.predictions for out in outputs if out.predictions is not None]
    if frames:
        predictions = pd.concat(frames, ignore_index=True)
        front = ["method", "split", "fold", "unit", "actual"]
        predictions = predictions[front + [c for c in predictions.columns if c not in front]]
        predictions = _ordered(predictions, order, ["unit"])
    else:
        predictions = pd.DataFrame(columns=["method", "split", "fold", "unit", "actual"])
    return BacktestResult(
        results=results.reset_index(drop=True),
        predictions=predictions.reset_index(drop=True),
        target=target,
    )
