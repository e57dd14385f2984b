"""Long DataFrame -> validated table dataset: the door every reader goes through.

Rules (documented for users in :func:`bayesproxy.read_table`):

* **Units** are (run, step) pairs. ``run`` comes from ``run_columns`` when given, else a
  ``run`` or ``run_id`` column, else the model. The unit label is ``"run"`` when the table
  has no steps and ``"run@step"`` otherwise.
* **Replicates** come from a ``replicate`` column, else from ``replicate_columns``
  (default: those of ``seed`` and ``data_variant`` that take several values), joined by
  ``"/"``; ``"0"`` when absent.
* **Task names** are ``task``, or ``task/subtask`` when a subtask is given. When a base
  name still holds several values of a qualifier column (``prompt_format``, ``metric``,
  ``n_shot``, ``split``, in that order), the varying qualifiers are appended with ``":"``
  to every name of that base (``arc_easy:rc:acc_len_norm:val``), so (unit, task,
  replicate) stays unique. ``task_name`` overrides the rule.
* **Kinds**: ``kinds=`` mapping, else a ``kind`` column, else ``is_fraction``, else a metric
  name known as a loss (``bpb``, ``ce_loss``, ``perplexity``, ...), else ``"accuracy"``.
* **Percent scores** of accuracy tasks: with ``percent="auto"`` a task whose values all lie
  in [0, 100] with some above 1 is divided by 100 (logged); ``percent="refuse"`` raises.
  A task that seems to mix both scales is refused either way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Literal

import numpy as np
import pandas as pd
import xarray as xr

from bayesproxy.chance import is_metric_name, resolve_chance
from bayesproxy.errors import (
    DuplicateRowsError,
    EmptyTableError,
    InsufficientTargetError,
    MissingColumnsError,
    MissingValuesError,
    NonNumericScoreError,
    PercentScoresError,
    ScoreRangeError,
    TableError,
    UnknownTaskError,
)
from bayesproxy.table import check_constant, make_dataset

__all__ = ["QUALIFIER_COLUMNS", "REQUIRED_COLUMNS", "long_to_dataset"]

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("model", "task", "score")
NUMERIC_COLUMNS = ("step", "tokens", "params", "flops", "stderr", "n_items", "chance")
QUALIFIER_COLUMNS = ("prompt_format", "metric", "n_shot", "split")
DEFAULT_REPLICATE_COLUMNS = ("seed", "data_variant")
# share of a percent-scaled task's values that may look like fractions before it is "mixed"
_MIXED_SHARE = 0.2

PercentMode = Literal["auto", "refuse"]


def long_to_dataset(
    df: pd.DataFrame,
    *,
    target: str | None = None,
    proxies: Sequence[str] | None = None,
    chance: Mapping[str, float] | None = None,
    kinds: Mapping[str, str] | None = None,
    score_column: str = "score",
    task_name: str | Callable[[pd.DataFrame], pd.Series] | None = None,
    run_columns: str | Sequence[str] | None = None,
    replicate_columns: str | Sequence[str] | None = None,
    percent: PercentMode | Collection[str] = "auto",
    drop_constant: bool = False,
    min_target_units: int = 0,
) -> xr.Dataset:
    """Validate a long DataFrame and shape it into a table dataset.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per unit x task [x replicate]; see the module notes for the columns.
    target : str, optional
        Name of the target task (after the naming rule).
    proxies : sequence of str, optional
        Keep only these tasks (plus the target).
    chance : mapping, optional
        Task -> chance level, overriding the table and the built-in list.
    kinds : mapping, optional
        Task -> ``"accuracy"`` or ``"metric"``.
    score_column : str, default "score"
        Column holding the scores.
    task_name : str or callable, optional
        A format string over columns (``"{task}:{metric}"``) or a function of the frame
        returning one name per row; replaces the default naming rule.
    run_columns : str or sequence of str, optional
        Columns naming the training run (joined by ``"/"``).
    replicate_columns : str or sequence of str, optional
        Columns naming the replicate (joined by ``"/"``).
    percent : {"auto", "refuse"} or collection of str, default "auto"
        How to treat accuracy tasks given in percent; a collection names tasks known to be
        in percent (divided by 100 without guessing).
    drop_constant : bool, default False
        Drop tasks with no variation instead of raising.
    min_target_units : int, default 0
        Least number of units the target must be observed on (checked before the
        constant-task check, so a sparse target gets the error that explains it).

    Returns
    -------
    xarray.Dataset
        Following the BenchmarkTable contract.

    Raises
    ------
    BayesproxyError
        A :class:`~bayesproxy.errors.TableError` subclass naming rows/columns.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"model": ["a", "b", "c"], "task": "x", "score": [10, 20, 35]})
    >>> ds = long_to_dataset(df)  # percent recognised and rescaled
    >>> ds["score"].values.ravel().tolist()
    [0.1, 0.2, 0.35]
    """
    if not isinstance(df, pd.DataFrame):
        raise TableError(
            f"expected a pandas DataFrame, got {type(df).__name__}."
            "\nHint: pass a DataFrame or a path to a .csv / .csv.gz / .parquet file."
        )
    if len(df) == 0:
        raise EmptyTableError()
    df = df.copy(deep=False)
    df.columns = [str(c) for c in df.columns]
    if pd.Index(df.columns).has_duplicates:
        dup = pd.Index(df.columns)[pd.Index(df.columns).duplicated()].unique().tolist()
        raise TableError(f"duplicate column names {dup}.\nHint: give every column a distinct name.")
    df = df.reset_index(drop=True)
    if score_column != "score":
        if score_column not in df:
            raise MissingColumnsError([score_column], available=df.columns)
        df = df.drop(columns=["score"], errors="ignore").rename(columns={score_column: "score"})
    missing = [c for c in REQUIRED_COLUMNS if c not in df]
    if missing:
        raise MissingColumnsError(missing, available=df.columns)

    for name in ("model", "task"):
        df[name] = _key_strings(df[name], name)
    df["score"] = _numeric(df["score"], "score")
    for name in NUMERIC_COLUMNS:
        if name in df:
            df[name] = _numeric(df[name], name)

    df["task"] = _task_names(df, task_name)
    df["run"] = _joined(df, run_columns, default=("run", "run_id"), fallback="model")
    df["replicate"] = _replicates(df, replicate_columns)
    if "step" not in df:
        df["step"] = np.nan

    # filter tasks early: unknown names are an error, other tasks need no checks
    all_tasks = pd.unique(df["task"]).tolist()
    if target is not None and target != "" and target not in all_tasks:
        raise UnknownTaskError(str(target), sorted(all_tasks), role="target")
    if proxies is not None:
        proxies = [str(p) for p in proxies]
        for p in proxies:
            if p not in all_tasks:
                raise UnknownTaskError(p, sorted(all_tasks), role="proxy")
        keep = set(proxies) | ({target} if target else set())
        df = df[df["task"].isin(keep)].reset_index(drop=True)

    task_kind = _kinds(df, kinds)
    _check_scores(df, task_kind, percent)
    higher = _higher_is_better(df, task_kind)
    chance_column = _per_task_value(df, "chance") if "chance" in df else {}

    df = _collapse_duplicates(df)

    # integer codes for the cube; units sorted by run then step, tasks by name
    unit_keys = df[["run", "step"]].drop_duplicates().sort_values(["run", "step"])
    unit_keys = unit_keys.reset_index(drop=True)
    has_steps = bool(np.isfinite(unit_keys["step"].to_numpy(dtype=float)).any())
    labels = [_unit_label(r, s, has_steps) for r, s in unit_keys.itertuples(index=False)]
    unit_index = pd.MultiIndex.from_frame(unit_keys)
    u_idx = unit_index.get_indexer(pd.MultiIndex.from_frame(df[["run", "step"]]))
    tasks = sorted(pd.unique(df["task"]).tolist())
    t_idx = pd.Index(tasks).get_indexer(df["task"])
    replicates = sorted(pd.unique(df["replicate"]).tolist(), key=_natural_key)
    r_idx = pd.Index(replicates).get_indexer(df["replicate"])

    shape = (len(labels), len(tasks), len(replicates))
    cubes = {}
    for name in ("score", "stderr", "n_items"):
        cube = np.full(shape, np.nan)
        if name in df:
            cube[u_idx, t_idx, r_idx] = df[name].to_numpy(dtype=float, na_value=np.nan)
        cubes[name] = cube

    units = _unit_frame(df, u_idx, labels, unit_keys)
    kinds_list = [task_kind[t] for t in tasks]
    chances = resolve_chance(
        tasks, kinds=dict(zip(tasks, kinds_list, strict=True)), user=chance, column=chance_column
    )
    unknown = [t for t in (chance or {}) if t not in tasks]
    if unknown:
        raise UnknownTaskError(unknown[0], tasks, role="task in chance=")
    task_frame = pd.DataFrame(
        {
            "chance": [chances[t] for t in tasks],
            "kind": kinds_list,
            "higher_is_better": [higher[t] for t in tasks],
        },
        index=tasks,
    )
    ds = make_dataset(
        score=cubes["score"],
        stderr=cubes["stderr"],
        n_items=cubes["n_items"],
        units=units,
        tasks=task_frame,
        replicates=replicates,
        target=target or "",
    )
    if target:
        n_obs = int(np.isfinite(cubes["score"][:, tasks.index(target), :]).any(axis=1).sum())
        if n_obs < min_target_units:
            raise InsufficientTargetError(target, n_obs, min_target_units)
    return check_constant(ds, drop=drop_constant)


# ---------------------------------------------------------------------- column parsing
def _key_strings(series: pd.Series, name: str) -> pd.Series:
    empty = series.isna() | (series.astype(str).str.strip() == "")
    if empty.any():
        raise MissingValuesError(name, series.index[empty].tolist())
    return series.astype(str).str.strip()


def _numeric(series: pd.Series, name: str) -> pd.Series:
    if pd.api.types.is_bool_dtype(series):
        return series.astype(float)
    if pd.api.types.is_numeric_dtype(series):
        values = series.astype(float)
    else:
        stripped = series.where(~series.astype(str).str.strip().isin(["", "nan", "NaN", "NA"]))
        values = pd.to_numeric(stripped, errors="coerce")
        bad = values.isna() & stripped.notna()
        if bad.any():
            raise NonNumericScoreError(name, series.index[bad].tolist(), series[bad].tolist())
        values = values.astype(float)
    if name != "score":
        inf = np.isinf(values.to_numpy())
        if inf.any():
            raise NonNumericScoreError(name, series.index[inf].tolist(), series[inf].tolist())
    return values


def _clean_str(series: pd.Series) -> pd.Series:
    """Strings with missing values as ''; integral floats without '.0' (n_shot 5.0 -> 5)."""
    if pd.api.types.is_float_dtype(series):
        values = series.to_numpy(dtype=float, na_value=np.nan)
        return pd.Series(_format_floats(values), index=series.index, dtype=object)
    return series.astype(object).where(series.notna(), "").astype(str).str.strip()


def _format_floats(values: np.ndarray) -> list[str]:
    uniq = pd.unique(values[np.isfinite(values)])
    fmt = {v: (f"{v:.0f}" if v == int(v) else f"{v:g}") for v in uniq}
    return [fmt.get(v, "") for v in values]


def _task_names(df: pd.DataFrame, task_name: str | Callable | None) -> pd.Series:
    if callable(task_name):
        names = pd.Series(task_name(df), index=df.index)
        return _key_strings(names, "task (from task_name)")
    if isinstance(task_name, str):
        fields = _format_fields(task_name)
        missing = [f for f in fields if f not in df]
        if missing:
            raise MissingColumnsError(missing, available=df.columns)
        combos = df[fields].drop_duplicates()
        names = {
            tuple(row): task_name.format(**dict(zip(fields, row, strict=True)))
            for row in combos.astype(str).itertuples(index=False)
        }
        key = pd.MultiIndex.from_frame(df[fields].astype(str))
        return pd.Series([names[k] for k in key], index=df.index)
    base = df["task"].astype(str)
    if "subtask" in df:
        sub = _clean_str(df["subtask"])
        base = base.where(sub == "", base + "/" + sub)
    quals = [c for c in QUALIFIER_COLUMNS if c in df]
    if not quals:
        return base
    qual = {c: _clean_str(df[c]) for c in quals}
    frame = pd.DataFrame({"base": base, **qual})
    # a qualifier is kept for a base name when it takes several values there
    varying = frame.groupby("base", sort=False)[quals].nunique() > 1
    names = base.copy()
    for c in quals:
        needs = frame["base"].map(varying[c]).to_numpy(dtype=bool)
        names = names.where(~needs, names + ":" + frame[c].where(frame[c] != "", "none"))
    return names


def _format_fields(fmt: str) -> list[str]:
    import string

    return [f for _, f, _, _ in string.Formatter().parse(fmt) if f]


def _joined(
    df: pd.DataFrame,
    columns: str | Sequence[str] | None,
    *,
    default: Sequence[str],
    fallback: str,
) -> pd.Series:
    if columns is None:
        present = [c for c in default if c in df]
        if not present:
            return df[fallback]
        col = _clean_str(df[present[0]])
        return col.where(col != "", df[fallback])
    cols = [columns] if isinstance(columns, str) else list(columns)
    missing = [c for c in cols if c not in df]
    if missing:
        raise MissingColumnsError(missing, available=df.columns)
    parts = [_clean_str(df[c]) for c in cols]
    out = parts[0]
    for p in parts[1:]:
        out = out + "/" + p
    return out.where(out.str.strip("/") != "", df[fallback])


def _replicates(df: pd.DataFrame, columns: str | Sequence[str] | None) -> pd.Series:
    if columns is None:
        if "replicate" in df:
            cols = ["replicate"]
        else:
            cols = [
                c for c in DEFAULT_REPLICATE_COLUMNS if c in df and _clean_str(df[c]).nunique() > 1
            ]
        if not cols:
            return pd.Series("0", index=df.index, dtype=object)
    else:
        cols = [columns] if isinstance(columns, str) else list(columns)
        missing = [c for c in cols if c not in df]
        if missing:
            raise MissingColumnsError(missing, available=df.columns)
    out = _clean_str(df[cols[0]])
    for c in cols[1:]:
        out = out + "/" + _clean_str(df[c])
    return out.where(out.str.strip("/") != "", "0")


def _per_task_value(df: pd.DataFrame, column: str) -> dict[str, object]:
    """Return the one value a per-task column takes for each task (conflicts raise)."""
    sub = df[["task", column]].dropna().drop_duplicates()
    conflict = sub["task"][sub["task"].duplicated()].unique().tolist()
    if conflict:
        values = sub[sub["task"] == conflict[0]][column].tolist()
        raise TableError(
            f"column {column!r} takes several values within task(s) {conflict[:5]}, e.g. "
            f"{values[:4]}.\nHint: a task's {column!r} must be the same on every row; fix the "
            "rows or split the task with task_name=..."
        )
    return dict(zip(sub["task"], sub[column], strict=True))


def _as_bool(value: object, column: str, task: str) -> bool:
    text = str(value).strip().lower()
    if text in {"true", "1", "1.0", "yes", "t"}:
        return True
    if text in {"false", "0", "0.0", "no", "f"}:
        return False
    raise TableError(
        f"column {column!r} of task {task!r} has {value!r}, not a boolean."
        "\nHint: write True / False."
    )


def _kinds(df: pd.DataFrame, kinds: Mapping[str, str] | None) -> dict[str, str]:
    tasks = pd.unique(df["task"]).tolist()
    out = dict.fromkeys(tasks, "accuracy")
    if "metric" in df:
        metric_of = df.drop_duplicates("task").set_index("task")["metric"]
        for t in tasks:
            if is_metric_name(str(metric_of.get(t, ""))):
                out[t] = "metric"
    if "is_fraction" in df:
        for t, v in _per_task_value(df, "is_fraction").items():
            out[t] = "accuracy" if _as_bool(v, "is_fraction", t) else "metric"
    if "kind" in df:
        for t, v in _per_task_value(df, "kind").items():
            out[t] = str(v)
    for t, v in (kinds or {}).items():
        if t not in out:
            raise UnknownTaskError(str(t), sorted(tasks), role="task in kinds=")
        out[t] = str(v)
    bad = {t: k for t, k in out.items() if k not in ("accuracy", "metric")}
    if bad:
        raise TableError(
            f"unknown task kind(s) {bad}.\nHint: use 'accuracy' (fractions in [0, 1]) or "
            "'metric' (losses, perplexities, ranks)."
        )
    return out


def _higher_is_better(df: pd.DataFrame, kinds: Mapping[str, str]) -> dict[str, bool]:
    out = {t: k == "accuracy" for t, k in kinds.items()}
    if "higher_is_better" in df:
        for t, v in _per_task_value(df, "higher_is_better").items():
            out[t] = _as_bool(v, "higher_is_better", t)
    return out


def _check_scores(
    df: pd.DataFrame, kinds: Mapping[str, str], percent: PercentMode | Collection[str]
) -> None:
    """Finite values; accuracies in [0, 1] after the percent rule (rescales in place)."""
    score = df["score"].to_numpy(dtype=float, na_value=np.nan).copy()
    inf = np.isinf(score)
    if inf.any():
        task = df["task"][inf].iloc[0]
        rows = df.index[inf & (df["task"] == task).to_numpy()]
        raise ScoreRangeError(task, rows.tolist(), score[rows], kind=kinds[task])
    known_percent = set() if isinstance(percent, str) else {str(t) for t in percent}
    mode = percent if isinstance(percent, str) else "refuse"
    if mode not in ("auto", "refuse"):
        raise TableError(
            f"percent={percent!r} is not understood.\nHint: use 'auto', 'refuse' or a list "
            "of task names given in percent."
        )
    unknown = known_percent - set(kinds)
    if unknown:
        raise UnknownTaskError(sorted(unknown)[0], sorted(kinds), role="task in percent=")
    groups = df.groupby("task", sort=False).indices
    refuse, mixed, rescaled = [], [], []
    for task, rows in groups.items():
        if kinds[task] != "accuracy":
            continue
        values = score[rows]
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            continue
        if task in known_percent:
            score[rows] = values / 100.0
            continue
        if finite.max() <= 1.0:
            continue
        if finite.min() < 0.0 or finite.max() > 100.0:
            continue  # plainly out of range: reported below
        looks_fraction = (finite > 0.0) & (finite < 1.0)
        if looks_fraction.mean() > _MIXED_SHARE:
            mixed.append(task)
        elif mode == "auto":
            score[rows] = values / 100.0
            rescaled.append(task)
        else:
            refuse.append(task)
    if mixed or refuse:
        raise PercentScoresError(refuse, mixed=mixed)
    if rescaled:
        log.info(
            "scores of %d task(s) read as percent and divided by 100: %s",
            len(rescaled),
            ", ".join(rescaled[:10]),
        )
    for task, rows in groups.items():
        if kinds[task] != "accuracy":
            continue
        values = score[rows]
        bad = (values < 0.0) | (values > 1.0)
        if bad.any():
            raise ScoreRangeError(task, df.index[rows[bad]].tolist(), values[bad])
    df["score"] = score


def _collapse_duplicates(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (run, step, task, replicate): equal duplicates collapse, others raise."""
    key = ["run", "step", "task", "replicate"]
    dup = df.duplicated(key, keep=False)
    if not dup.any():
        return df
    sub = df.loc[dup, [*key, "score"]]
    # a missing score never conflicts with an observed one: evaluations win over gaps
    observed = sub[sub["score"].notna()]
    spread = observed.groupby(key, dropna=False, sort=False)["score"].agg(["min", "max"])
    clash = spread[~np.isclose(spread["min"], spread["max"], rtol=0, atol=1e-12)]
    if len(clash):
        clash_keys = [tuple(k) for k in clash.index[:10]]
        in_clash = pd.MultiIndex.from_frame(observed[key]).isin(clash.index)
        rows = observed.index[in_clash].tolist()
        raise DuplicateRowsError(clash_keys, rows)
    order = df["score"].isna().to_numpy()  # observed rows first, so 'first' keeps them
    df = df.iloc[np.argsort(order, kind="stable")]
    return df.drop_duplicates(key, keep="first").sort_index()


def _unit_frame(
    df: pd.DataFrame, u_idx: np.ndarray, labels: list[str], keys: pd.DataFrame
) -> pd.DataFrame:
    cols = [c for c in ("model", "family", "params", "tokens", "flops") if c in df]
    first = df[cols].groupby(u_idx, sort=True).first()  # first non-null per unit
    units = pd.DataFrame(index=pd.Index(labels, name="unit"))
    for c in cols:
        units[c] = first[c].to_numpy()
    units["run"] = keys["run"].astype(str).to_numpy()
    units["step"] = keys["step"].to_numpy(dtype=float)
    if "family" in units:
        units["family"] = _clean_str(units["family"]).to_numpy()
    return units


def _unit_label(run: str, step: float, has_steps: bool) -> str:
    if not has_steps:
        return str(run)
    if not np.isfinite(step):
        return f"{run}@final"
    return f"{run}@{step:.0f}" if float(step).is_integer() else f"{run}@{step:g}"


def _natural_key(label: str) -> tuple[int, float | str]:
    try:
        return (0, float(label))
    except ValueError:
        return (1, label)
