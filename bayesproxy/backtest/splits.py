"""Train/test splits for backtests: each yields folds of (train table, test table).

Every split is a small frozen dataclass with ``split(table, *, target=None)`` returning an
iterator of :class:`Fold`. The test table keeps the target so the harness can score the
forecasts; the harness hands forecasters a copy with the target masked.

Units a split cannot place (no FLOPs for a compute cutoff, no step for early → late, ...)
are left out of both sides rather than guessed.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from bayesproxy.backtest._tables import dataset_of, subset_units
from bayesproxy.backtest.errors import SplitError

if TYPE_CHECKING:
    from bayesproxy.table import BenchmarkTable

__all__ = [
    "ComputeCutoff",
    "EarlyToLate",
    "Fold",
    "LeaveOneFamilyOut",
    "LeaveOneUnitOut",
    "SmallToLarge",
    "Split",
    "parse_split",
]


@dataclass(frozen=True)
class Fold:
    """One train/test partition of a table.

    Attributes
    ----------
    split : str
        Name of the split that made it, e.g. ``"compute:8.4e+22"``.
    name : str
        Name of the fold within the split, e.g. the held-out family.
    train, test : BenchmarkTable
        The training units and the held-out units (the test table keeps the target).
    """

    split: str
    name: str
    train: BenchmarkTable
    test: BenchmarkTable


def _coord(table: BenchmarkTable, name: str) -> np.ndarray:
    ds = dataset_of(table)
    if name not in ds.coords:
        raise SplitError(
            f"the table has no {name!r} coordinate, which this split needs.",
            hint=f"read the table with a {name!r} column.",
        )
    return np.asarray(ds[name].values)


def _target_observed(table: BenchmarkTable, target: str | None) -> np.ndarray:
    """Per unit: whether the target has at least one observed score (all true without one)."""
    ds = dataset_of(table)
    if not target:
        return np.ones(ds.sizes["unit"], dtype=bool)
    score = ds["score"].sel(task=target)
    return np.asarray(score.notnull().any("replicate").values)


def _fold(
    split: str, name: str, table: BenchmarkTable, train: np.ndarray, test: np.ndarray, hint: str
) -> Fold:
    if not train.any() or not test.any():
        side = "training" if not train.any() else "test"
        raise SplitError(f"split {split!r} leaves no {side} units in fold {name!r}.", hint=hint)
    return Fold(
        split=split, name=name, train=subset_units(table, train), test=subset_units(table, test)
    )


@dataclass(frozen=True)
class ComputeCutoff:
    """Fit on units trained with at most ``flops`` FLOPs, forecast those above.

    Parameters
    ----------
    flops : float, default 8.4e22
        The cutoff (8.4e22 is Llama-2-7B's training compute, the cutoff of Observational
        Scaling Laws). Units without FLOPs are left out.

    Examples
    --------
    >>> ComputeCutoff(flops=1e22).name
    'compute:1e+22'
    """

    flops: float = 8.4e22

    @property
    def name(self) -> str:
        """Short name, as accepted by :func:`parse_split`."""
        return f"compute:{self.flops:.3g}"

    def split(self, table: BenchmarkTable, *, target: str | None = None) -> Iterator[Fold]:
        """Yield the single fold (train: flops ≤ cutoff; test: flops > cutoff)."""
        flops = _coord(table, "flops").astype(float)
        known = np.isfinite(flops)
        yield _fold(
            self.name,
            f"flops<={self.flops:.3g}",
            table,
            known & (flops <= self.flops),
            known & (flops > self.flops),
            hint="choose a cutoff inside the range of the table's 'flops' coordinate.",
        )


@dataclass(frozen=True)
class EarlyToLate:
    """Within each training run, fit on early checkpoints and forecast the later ones.

    Give exactly one of ``step_fraction`` (early = step ≤ that fraction of the run's last
    step, per run) or ``max_step`` (early = step ≤ that absolute step, every run).

    Parameters
    ----------
    step_fraction : float, optional
        In (0, 1).
    max_step : float, optional
        An absolute step.
    runs : tuple of str, optional
        Only these runs (default: every run with steps).

    Examples
    --------
    >>> EarlyToLate(step_fraction=0.3).name
    'early-late:0.3'
    """

    step_fraction: float | None = None
    max_step: float | None = None
    runs: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if (self.step_fraction is None) == (self.max_step is None):
            raise SplitError(
                "EarlyToLate needs exactly one of step_fraction and max_step.",
                hint="e.g. EarlyToLate(step_fraction=0.3) or EarlyToLate(max_step=50000).",
            )
        if self.step_fraction is not None and not 0 < self.step_fraction < 1:
            raise SplitError(
                f"step_fraction must lie in (0, 1), got {self.step_fraction}.",
                hint="pass the share of each run's steps used for fitting, e.g. 0.3.",
            )

    @property
    def name(self) -> str:
        """Short name, as accepted by :func:`parse_split`."""
        if self.step_fraction is not None:
            return f"early-late:{self.step_fraction:g}"
        return f"early-late:step={self.max_step:g}"

    def split(self, table: BenchmarkTable, *, target: str | None = None) -> Iterator[Fold]:
        """Yield the single fold (train: early checkpoints; test: later ones, same runs)."""
        step = _coord(table, "step").astype(float)
        run = _coord(table, "run").astype(str)
        usable = np.isfinite(step)
        if self.runs is not None:
            unknown = sorted(set(self.runs) - set(run))
            if unknown:
                raise SplitError(
                    f"runs {unknown} are not in the table.",
                    hint=f"choose among the table's runs, e.g. {sorted(set(run))[:5]}.",
                )
            usable &= np.isin(run, self.runs)
        if self.max_step is not None:
            cutoff = np.full(step.shape, float(self.max_step))
        else:
            cutoff = np.full(step.shape, np.nan)
            for r in np.unique(run[usable]):
                here = usable & (run == r)
                cutoff[here] = self.step_fraction * np.max(step[here])
        early = usable & (step <= cutoff)
        late = usable & (step > cutoff)
        # a run with no early checkpoint gives the test nothing to learn from within the run
        runs_with_early = set(run[early])
        late &= np.isin(run, list(runs_with_early))
        yield _fold(
            self.name,
            self.name.split(":", 1)[1],
            table,
            early,
            late,
            hint="the table needs units with a 'step' coordinate on both sides of the cutoff.",
        )


@dataclass(frozen=True)
class SmallToLarge:
    """Fit on models with at most ``params`` parameters, forecast the larger ones.

    Parameters
    ----------
    params : float
        Parameter-count cutoff. Units without ``params`` are left out.

    Examples
    --------
    >>> SmallToLarge(params=1e9).name
    'small-large:1e+09'
    """

    params: float

    @property
    def name(self) -> str:
        """Short name, as accepted by :func:`parse_split`."""
        return f"small-large:{self.params:.3g}"

    def split(self, table: BenchmarkTable, *, target: str | None = None) -> Iterator[Fold]:
        """Yield the single fold (train: params ≤ cutoff; test: params > cutoff)."""
        params = _coord(table, "params").astype(float)
        known = np.isfinite(params)
        yield _fold(
            self.name,
            f"params<={self.params:.3g}",
            table,
            known & (params <= self.params),
            known & (params > self.params),
            hint="choose a cutoff inside the range of the table's 'params' coordinate.",
        )


@dataclass(frozen=True)
class LeaveOneFamilyOut:
    """One fold per model family: fit on the other families, forecast the held-out one.

    Units with no family (``""``) always train. With ``target`` given, families whose
    units never observe the target are skipped (nothing to score).

    Parameters
    ----------
    families : tuple of str, optional
        Hold out only these families (default: every family).

    Examples
    --------
    >>> LeaveOneFamilyOut().name
    'family'
    """

    families: tuple[str, ...] | None = None

    @property
    def name(self) -> str:
        """Short name, as accepted by :func:`parse_split`."""
        return "family"

    def split(self, table: BenchmarkTable, *, target: str | None = None) -> Iterator[Fold]:
        """Yield one fold per (scorable) family."""
        family = _coord(table, "family").astype(str)
        observed = _target_observed(table, target)
        chosen = sorted(set(family[family != ""]))
        if self.families is not None:
            unknown = sorted(set(self.families) - set(chosen))
            if unknown:
                raise SplitError(
                    f"families {unknown} are not in the table.",
                    hint=f"choose among {chosen[:8]}{' ...' if len(chosen) > 8 else ''}.",
                )
            chosen = list(self.families)
        chosen = [f for f in chosen if np.any((family == f) & observed)]
        if not chosen:
            raise SplitError(
                "no family has a unit with an observed target to hold out.",
                hint="the table needs a 'family' coordinate (non-empty) for this split.",
            )
        for f in chosen:
            held = family == f
            yield _fold(
                self.name,
                f,
                table,
                ~held,
                held,
                hint="leave-one-family-out needs at least two families.",
            )


@dataclass(frozen=True)
class LeaveOneUnitOut:
    """One fold per unit: fit on all other units, forecast the held-out one.

    With ``target`` given, only units whose target is observed are held out.

    Examples
    --------
    >>> LeaveOneUnitOut().name
    'unit'
    """

    @property
    def name(self) -> str:
        """Short name, as accepted by :func:`parse_split`."""
        return "unit"

    def split(self, table: BenchmarkTable, *, target: str | None = None) -> Iterator[Fold]:
        """Yield one fold per (scorable) unit."""
        units = _coord(table, "unit").astype(str)
        observed = _target_observed(table, target)
        for i in np.flatnonzero(observed):
            held = np.zeros(units.size, dtype=bool)
            held[i] = True
            yield _fold(
                self.name,
                units[i],
                table,
                ~held,
                held,
                hint="leave-one-unit-out needs at least two units.",
            )


Split = ComputeCutoff | EarlyToLate | SmallToLarge | LeaveOneFamilyOut | LeaveOneUnitOut


def _number(text: str, spec: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise SplitError(
            f"cannot read {text!r} as a number in split {spec!r}.",
            hint="write numbers like 8.4e22, 1e9 or 0.3.",
        )
    return value


def parse_split(spec: str) -> Split:
    """Build a split from its short text form (as used on the command line).

    Parameters
    ----------
    spec : str
        One of ``compute:FLOPS`` (``compute`` alone: 8.4e22), ``early-late:FRACTION``,
        ``early-late:step=STEP``, ``small-large:PARAMS``, ``family``, ``unit``.

    Returns
    -------
    Split

    Examples
    --------
    >>> parse_split("compute:8.4e22")
    ComputeCutoff(flops=8.4e+22)
    >>> parse_split("early-late:0.3")
    EarlyToLate(step_fraction=0.3, max_step=None, runs=None)
    >>> parse_split("family")
    LeaveOneFamilyOut(families=None)
    """
    kind, _, arg = spec.strip().partition(":")
    kind = kind.strip().lower()
    arg = arg.strip()
    if kind == "compute":
        return ComputeCutoff(flops=_number(arg, spec)) if arg else ComputeCutoff()
    if kind in {"early-late", "early_late"} and arg:
        if arg.startswith("step="):
            return EarlyToLate(max_step=_number(arg.removeprefix("step="), spec))
        return EarlyToLate(step_fraction=_number(arg, spec))
    if kind in {"small-large", "small_large"} and arg:
        return SmallToLarge(params=_number(arg, spec))
    if kind == "family" and not arg:
        return LeaveOneFamilyOut()
    if kind == "unit" and not arg:
        return LeaveOneUnitOut()
    raise SplitError(
        f"cannot parse split {spec!r}.",
        hint="use compute:8.4e22, early-late:0.3, early-late:step=50000, small-large:1e9, "
        "family or unit.",
    )
