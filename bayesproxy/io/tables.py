"""``read_table``: long or wide benchmark tables from CSV, parquet or a DataFrame."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Literal

import pandas as pd

from bayesproxy.errors import EmptyTableError, TableError
from bayesproxy.io.long import PercentMode
from bayesproxy.io.wide import wide_to_long
from bayesproxy.table import DEFAULT_MIN_TARGET_UNITS, BenchmarkTable

__all__ = ["load_frame", "read_table"]

_CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zip", ".csv.xz", ".tsv", ".tsv.gz")


def load_frame(path: str | Path) -> pd.DataFrame:
    r"""Read a CSV (optionally compressed), TSV or parquet file into a DataFrame.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    TableError
        The file is missing, has an unknown suffix, or cannot be parsed.
    EmptyTableError
        The file holds no rows.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = p.write_text("model,task,score\\na,x,0.5\\n")
    >>> load_frame(p).shape
    (1, 3)
    """
    path = Path(path)
    if not path.is_file():
        raise TableError(
            f"no such file: {str(path)!r}.\nHint: check the path (relative paths start at "
            f"{str(Path.cwd())!r})."
        )
    name = path.name.lower()
    try:
        if name.endswith((".parquet", ".pq")):
            return pd.read_parquet(path)
        if name.endswith(_CSV_SUFFIXES):
            sep = "\t" if ".tsv" in name else ","
            return pd.read_csv(path, sep=sep, low_memory=False)
    except pd.errors.EmptyDataError as err:
        raise EmptyTableError(f"file {str(path)!r} is empty") from err
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as err:
        raise TableError(
            f"cannot parse {str(path)!r}: {err}.\nHint: check the file is a complete, "
            "comma-separated CSV (or a parquet file) with a header row."
        ) from err
    raise TableError(
        f"unknown file type {path.name!r}.\nHint: use .csv, .csv.gz, .tsv or .parquet, or "
        "read it with pandas and pass the DataFrame."
    )


def read_table(
    source: str | Path | pd.DataFrame,
    *,
    target: str | None = None,
    proxies: Sequence[str] | None = None,
    chance: Mapping[str, float] | None = None,
    kinds: Mapping[str, str] | None = None,
    format: Literal["auto", "long", "wide"] = "auto",
    score_column: str = "score",
    task_name: str | Callable[[pd.DataFrame], pd.Series] | None = None,
    run_columns: str | Sequence[str] | None = None,
    replicate_columns: str | Sequence[str] | None = None,
    id_columns: Sequence[str] | None = None,
    percent: PercentMode | Collection[str] = "auto",
    drop_constant: bool = False,
    min_target_units: int = DEFAULT_MIN_TARGET_UNITS,
) -> BenchmarkTable:
    """Read a benchmark table from a long or wide CSV / parquet file or DataFrame.

    A long table has one row per unit x task [x replicate] with the columns ``model``,
    ``task``, ``score`` and optionally ``step``, ``tokens``, ``params``, ``flops``,
    ``family``, ``run``/``run_id``, ``replicate`` (or ``seed``/``data_variant``), ``stderr``,
    ``n_items``, ``chance``, ``subtask``, ``metric``, ``n_shot``, ``prompt_format``,
    ``split``, ``is_fraction``/``kind`` and ``higher_is_better``. A wide table has one row
    per unit and one column per task.

    Units are (run, step) pairs labelled ``"run"`` or ``"run@step"``; the run is the
    ``run``/``run_id`` column or else the model. Task names are ``task`` or
    ``task/subtask``, with ``:prompt_format``, ``:metric``, ``:n_shot``, ``:split``
    appended (in that order) only where a base name holds several values of that column.
    Missing scores stay NaN; nothing is dropped silently.

    Parameters
    ----------
    source : str, Path or pandas.DataFrame
        ``.csv``, ``.csv.gz``, ``.tsv`` or ``.parquet`` path, or a DataFrame.
    target : str, optional
        The target task; it must be observed on at least ``min_target_units`` units.
    proxies : sequence of str, optional
        Keep only these tasks (plus the target).
    chance : mapping, optional
        Task -> chance level, overriding the ``chance`` column and the built-in list.
    kinds : mapping, optional
        Task -> ``"accuracy"`` (fraction in [0, 1]) or ``"metric"`` (loss, perplexity...).
    format : {"auto", "long", "wide"}, default "auto"
        ``"auto"`` reads long when the table has ``task`` and score columns.
    score_column : str, default "score"
        Column holding scores in a long table.
    task_name : str or callable, optional
        Format string over columns (``"{task}:{metric}"``) or function of the frame giving
        each row's task name; replaces the default naming rule.
    run_columns, replicate_columns : str or sequence of str, optional
        Columns naming the training run / the replicate (joined by ``"/"``). For the OLMo
        ladder, ``run_columns=["model", "train_variant"]`` makes the rerun a second
        replicate of its run instead of a separate run.
    id_columns : sequence of str, optional
        Wide tables: the columns that are not tasks.
    percent : {"auto", "refuse"} or collection of str, default "auto"
        Accuracy tasks given in percent: ``"auto"`` rescales a task whose values all lie in
        [0, 100] with some above 1 (logged); ``"refuse"`` raises
        :class:`~bayesproxy.errors.PercentScoresError`; a list names tasks in percent.
    drop_constant : bool, default False
        Drop tasks without variation instead of raising ``ConstantTaskError``.
    min_target_units : int, default 3
        Least number of units the target must be observed on.

    Returns
    -------
    BenchmarkTable

    Raises
    ------
    BayesproxyError
        A :class:`~bayesproxy.errors.TableError` subclass that names the rows / columns.

    Examples
    --------
    >>> import pandas as pd
    >>> import bayesproxy
    >>> df = pd.DataFrame({
    ...     "model": ["s", "m", "l"] * 2,
    ...     "task": ["arc_easy"] * 3 + ["mmlu"] * 3,
    ...     "score": [0.35, 0.5, 0.7, 0.25, 0.27, 0.45],
    ... })
    >>> table = bayesproxy.read_table(df, target="mmlu")
    >>> table.chance.to_dict()
    {'arc_easy': 0.25, 'mmlu': 0.25}
    """
    if isinstance(source, pd.DataFrame):
        frame = source
    elif isinstance(source, str | Path):
        frame = load_frame(source)
    else:
        raise TableError(
            f"cannot read a table from {type(source).__name__}.\nHint: pass a path to a "
            ".csv / .csv.gz / .parquet file or a pandas DataFrame."
        )
    if format not in ("auto", "long", "wide"):
        raise TableError(
            f"format={format!r} is not understood.\nHint: use 'auto', 'long' or 'wide'."
        )
    columns = {str(c) for c in frame.columns}
    is_long = format == "long" or (
        format == "auto" and "task" in columns and score_column in columns
    )
    if not is_long:
        frame = wide_to_long(frame, id_columns=id_columns)
        score_column = "score"
    return BenchmarkTable.from_dataframe(
        frame,
        target=target,
        proxies=proxies,
        chance=chance,
        kinds=kinds,
        score_column=score_column,
        task_name=task_name,
        run_columns=run_columns,
        replicate_columns=replicate_columns,
        percent=percent,
        drop_constant=drop_constant,
        min_target_units=min_target_units,
    )
