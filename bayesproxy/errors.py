"""Every user-facing failure of bayesproxy, as one small exception hierarchy.

Messages name the offending rows, columns, tasks or files and end with a ``Hint:`` that says
how to fix the input. Catch :class:`BayesproxyError` to catch them all.

Examples
--------
>>> from bayesproxy.errors import BayesproxyError, MissingColumnsError
>>> try:
...     raise MissingColumnsError(["score"], available=["model", "task"])
... except BayesproxyError as err:
...     print(type(err).__name__)
MissingColumnsError
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = [
    "BayesproxyError",
    "ConstantTaskError",
    "ConvergenceError",
    "ConvergenceWarning",
    "DuplicateRowsError",
    "EmptyTableError",
    "InsufficientTargetError",
    "LmEvalFormatError",
    "MissingColumnsError",
    "MissingValuesError",
    "ModelFileError",
    "NonNumericScoreError",
    "PercentScoresError",
    "ScoreRangeError",
    "TableError",
    "UnknownTaskError",
    "format_rows",
]


def format_rows(rows: Sequence[object], *, limit: int = 5) -> str:
    """Render the first few row labels and how many there are in all.

    Parameters
    ----------
    rows : sequence
        Row indices or labels.
    limit : int, default 5
        How many to show before eliding.

    Returns
    -------
    str
        For example ``"rows 3, 7, 9 (3 in all)"``.

    Examples
    --------
    >>> format_rows([3, 7, 9, 11, 12, 20, 21], limit=3)
    'rows 3, 7, 9, ... (7 in all)'
    """
    rows = list(rows)
    shown = ", ".join(str(r) for r in rows[:limit])
    more = ", ..." if len(rows) > limit else ""
    word = "row" if len(rows) == 1 else "rows"
    return f"{word} {shown}{more} ({len(rows)} in all)"


def _with_hint(message: str, hint: str) -> str:
    return f"{message}\nHint: {hint}"


class BayesproxyError(Exception):
    """Base class of every error bayesproxy raises on purpose."""


class TableError(BayesproxyError, ValueError):
    """A benchmark table (or its source) cannot be used as given."""


class MissingColumnsError(TableError):
    """Required columns are absent from a long table."""

    def __init__(self, missing: Iterable[str], *, available: Iterable[str] = ()) -> None:
        self.missing = list(missing)
        self.available = list(available)
        hints = []
        for name in self.missing:
            close = difflib.get_close_matches(name, [str(a) for a in self.available], n=1)
            if close:
                hints.append(f"{close[0]!r} -> {name!r}")
        hint = "rename the columns" + (f" (perhaps {', '.join(hints)})" if hints else "")
        hint += " or pass the column names as options (e.g. score_column=..., unit_columns=...)."
        super().__init__(
            _with_hint(
                f"missing required column(s) {self.missing}; the table has {self.available}.",
                hint,
            )
        )


class MissingValuesError(TableError):
    """Empty cells in a column that identifies rows (model, task, ...)."""

    def __init__(self, column: str, rows: Sequence[object]) -> None:
        self.column = column
        self.rows = list(rows)
        super().__init__(
            _with_hint(
                f"column {column!r} is empty at {format_rows(self.rows)}.",
                f"fill in {column!r} on those rows or drop them before reading.",
            )
        )


class NonNumericScoreError(TableError):
    """Scores that cannot be read as numbers."""

    def __init__(self, column: str, rows: Sequence[object], values: Sequence[object]) -> None:
        self.column = column
        self.rows = list(rows)
        examples = ", ".join(repr(v) for v in list(values)[:3])
        super().__init__(
            _with_hint(
                f"column {column!r} has non-numeric values at {format_rows(self.rows)}: "
                f"{examples}.",
                "write scores as plain numbers (use an empty cell or NaN for 'not evaluated').",
            )
        )


class ScoreRangeError(TableError):
    """Accuracy scores outside [0, 1], or non-finite scores of any task."""

    def __init__(
        self, task: str, rows: Sequence[object], values: Sequence[float], *, kind: str = "accuracy"
    ) -> None:
        self.task = task
        self.rows = list(rows)
        examples = ", ".join(f"{v:g}" for v in list(values)[:3])
        if kind == "accuracy":
            problem = f"task {task!r} is an accuracy task but has scores outside [0, 1]"
            hint = (
                "fix those values, or declare the task a metric (e.g. a loss) through an "
                "'is_fraction' column or the kinds={task: 'metric'} option."
            )
        else:
            problem = f"task {task!r} has non-finite scores"
            hint = "use an empty cell or NaN for 'not evaluated', never inf."
        super().__init__(_with_hint(f"{problem} at {format_rows(self.rows)}: {examples}.", hint))


class PercentScoresError(TableError):
    """Scores that look like percentages where fractions are expected."""

    def __init__(self, tasks: Sequence[str], *, mixed: Sequence[str] = ()) -> None:
        self.tasks = list(tasks)
        self.mixed = list(mixed)
        parts = []
        if self.tasks:
            parts.append(f"task(s) {self.tasks} look like percentages (values in (1, 100])")
        if self.mixed:
            parts.append(f"task(s) {self.mixed} mix fractions and percentages")
        msg = "; ".join(parts) or "scores look like percentages"
        super().__init__(
            _with_hint(
                msg + ".",
                "divide by 100, or pass percent='auto' to rescale tasks whose values all lie "
                "in [0, 100]; a task that mixes both scales must be fixed by hand.",
            )
        )


class DuplicateRowsError(TableError):
    """Several rows for one (unit, task, replicate) with different scores."""

    def __init__(self, keys: Sequence[tuple[object, ...]], rows: Sequence[object]) -> None:
        self.keys = list(keys)
        self.rows = list(rows)
        shown = "; ".join(str(k) for k in self.keys[:3])
        super().__init__(
            _with_hint(
                f"{len(self.keys)} (unit, task, replicate) key(s) have rows with different "
                f"scores, e.g. {shown}; at {format_rows(self.rows)}.",
                "keep one row per key, or tell them apart with a 'replicate' column (seed / "
                "data variant) or task_columns=... (e.g. add 'metric' or 'n_shot').",
            )
        )


class UnknownTaskError(TableError, KeyError):
    """A target or proxy name that is not a task of the table."""

    def __init__(self, name: str, available: Sequence[str], *, role: str = "task") -> None:
        self.name = name
        self.available = list(available)
        close = difflib.get_close_matches(name, self.available, n=3, cutoff=0.5)
        hint = (
            f"did you mean {', '.join(repr(c) for c in close)}?"
            if close
            else f"choose one of {self.available[:10]}"
            + (" ..." if len(self.available) > 10 else "")
        )
        super().__init__(_with_hint(f"unknown {role} {name!r}.", hint))

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0])


class EmptyTableError(TableError):
    """A table with no usable rows."""

    def __init__(self, what: str = "the table has no rows") -> None:
        super().__init__(
            _with_hint(
                f"{what}.",
                "check the path and the filters (tasks=, units=, target=) you passed.",
            )
        )


class InsufficientTargetError(TableError):
    """The target is observed on too few units to fit anything."""

    def __init__(self, target: str, n_observed: int, minimum: int) -> None:
        self.target = target
        self.n_observed = n_observed
        self.minimum = minimum
        super().__init__(
            _with_hint(
                f"target {target!r} is observed on {n_observed} unit(s); at least {minimum} "
                "are needed to fit.",
                "add evaluations of the target on more units, or lower min_target_units "
                "(at your own risk).",
            )
        )


class ConstantTaskError(TableError):
    """A task whose scores do not vary across units."""

    def __init__(self, tasks: Sequence[str]) -> None:
        self.tasks = list(tasks)
        super().__init__(
            _with_hint(
                f"task(s) {self.tasks} have no variation across units (a single distinct "
                "score), so they carry no information.",
                "drop them (pass drop_constant=True) or check that the right column was read.",
            )
        )


class LmEvalFormatError(TableError):
    """An lm-evaluation-harness result file that cannot be read."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        super().__init__(
            _with_hint(
                f"cannot read lm-eval results file {str(self.path)!r}: {problem}.",
                "check that the file is a complete JSON written by lm-evaluation-harness "
                "(with a 'results' mapping); re-run or remove truncated files.",
            )
        )


class ConvergenceError(BayesproxyError):
    """MCMC did not converge well enough to trust the fit."""


class ConvergenceWarning(UserWarning):
    """MCMC diagnostics are marginal: the fit is usable but worth checking."""


class ModelFileError(BayesproxyError):
    """A saved fit that is missing, corrupt, or written by another schema."""
