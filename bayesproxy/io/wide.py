"""Wide tables (one column per task) -> the long form the table builder reads."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from bayesproxy.errors import EmptyTableError, MissingColumnsError, TableError

__all__ = ["ID_COLUMNS", "wide_to_long"]

# columns that describe a unit or replicate rather than a task
ID_COLUMNS = (
    "model",
    "step",
    "run",
    "run_id",
    "family",
    "params",
    "tokens",
    "flops",
    "replicate",
    "seed",
    "data_variant",
    "train_variant",
    "model_type",
    "dataset",
)


def wide_to_long(
    df: pd.DataFrame,
    *,
    id_columns: Sequence[str] | None = None,
    tasks: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Melt a wide table (one row per unit, one column per task) into the long form.

    Parameters
    ----------
    df : pandas.DataFrame
        Must have a ``model`` column (or an index named ``model``).
    id_columns : sequence of str, optional
        Unit/replicate columns; default: the known ones (:data:`ID_COLUMNS`) present.
    tasks : sequence of str, optional
        Task columns; default: every column that is not an id column.

    Returns
    -------
    pandas.DataFrame
        Long form with ``task`` and ``score`` columns.

    Raises
    ------
    MissingColumnsError
        No ``model`` column, or named columns absent.
    EmptyTableError
        No task columns or no rows.

    Examples
    --------
    >>> import pandas as pd
    >>> wide = pd.DataFrame({"model": ["a", "b"], "x": [0.1, 0.2]})
    >>> wide_to_long(wide)[["model", "task", "score"]].values.tolist()
    [['a', 'x', 0.1], ['b', 'x', 0.2]]
    """
    if not isinstance(df, pd.DataFrame):
        raise TableError(
            f"expected a pandas DataFrame, got {type(df).__name__}.\nHint: pass a DataFrame."
        )
    if "model" not in df and df.index.name == "model":
        df = df.reset_index()
    df = df.copy(deep=False)
    df.columns = [str(c) for c in df.columns]
    if len(df) == 0:
        raise EmptyTableError()
    if id_columns is None:
        ids = [c for c in ID_COLUMNS if c in df]
    else:
        ids = [str(c) for c in id_columns]
        if "model" not in ids and "model" in df:
            ids = ["model", *ids]
    if "model" not in ids:
        raise MissingColumnsError(["model"], available=df.columns)
    task_cols = [c for c in df.columns if c not in ids] if tasks is None else list(tasks)
    missing = [c for c in [*ids, *task_cols] if c not in df]
    if missing:
        raise MissingColumnsError(missing, available=df.columns)
    if not task_cols:
        raise EmptyTableError("the wide table has no task columns")
    clash = [c for c in (*ids, *task_cols) if c in ("task", "score")]
    if clash:
        raise TableError(
            f"a wide table cannot have columns named {clash}: they are the long form's "
            "columns.\nHint: read it with format='long', or rename those columns."
        )
    # object dtype: a task column of text must reach the numeric check, not melt's casting
    values = df[task_cols].astype(object)
    long = pd.concat([df[ids], values], axis=1).melt(
        id_vars=ids, value_vars=task_cols, var_name="task", value_name="score"
    )
    return long
