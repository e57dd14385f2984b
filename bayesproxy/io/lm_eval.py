"""``read_lm_eval``: a directory of lm-evaluation-harness result files -> BenchmarkTable.

Two layouts are understood, told apart per file:

* **older** (harness <= 0.3): ``{"results": {task: {"acc": .., "acc_stderr": ..}},
  "versions": {..}, "config": {"model_args": "pretrained=...,revision=step1000",
  "num_fewshot": 0, ...}}``;
* **current** (harness >= 0.4): metric keys carry a filter (``"acc,none"``,
  ``"acc_stderr,none"``, ``"exact_match,strict-match"``), with ``configs``, ``n-shot``,
  ``n-samples``, ``higher_is_better`` and ``config.model_args`` beside ``results``.

The model name comes from ``model=``, else ``pretrained=`` in ``model_args``, else
``model_name``, else the file's parent folder (current layout) or stem. The checkpoint step
comes from ``step_from``: by default ``revision=stepN`` in ``model_args``, else ``stepN`` in
the file's path.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from bayesproxy.chance import is_metric_name
from bayesproxy.errors import EmptyTableError, LmEvalFormatError, TableError
from bayesproxy.io.long import PercentMode
from bayesproxy.table import DEFAULT_MIN_TARGET_UNITS, BenchmarkTable

__all__ = ["DEFAULT_METRICS", "lm_eval_records", "read_lm_eval"]

# preferred metric per task when metric="auto": the first one a task reports
DEFAULT_METRICS = (
    "acc",
    "exact_match",
    "acc_norm",
    "mc2",
    "mc1",
    "f1",
    "em",
    "pass@1",
    "pct_stereotype",
    "word_perplexity",
    "ppl",
    "perplexity",
    "bleu",
)
# fractions in [0, 1]; metrics not listed here or in chance.METRIC_NAMES are judged by value
_FRACTION_METRICS = frozenset(
    {"acc", "acc_norm", "exact_match", "mc1", "mc2", "f1", "em", "pass@1", "pct_stereotype"}
)
_STEP_PATTERN = re.compile(r"step[_-]?(\d+)", re.IGNORECASE)

StepFrom = str | Callable[[Path, Mapping[str, Any]], float | None]


def read_lm_eval(
    directory: str | Path,
    *,
    model: str | Callable[[Path, Mapping[str, Any]], str] | None = None,
    step_from: StepFrom = "auto",
    replicate_from: str | Callable[[Path, Mapping[str, Any]], str] | None = None,
    metric: str | Sequence[str] = "auto",
    pattern: str = "**/*.json",
    target: str | None = None,
    proxies: Sequence[str] | None = None,
    chance: Mapping[str, float] | None = None,
    percent: PercentMode | Collection[str] = "auto",
    drop_constant: bool = False,
    min_target_units: int = DEFAULT_MIN_TARGET_UNITS,
) -> BenchmarkTable:
    """Read lm-evaluation-harness result JSON files (older or current layout) into a table.

    Parameters
    ----------
    directory : str or Path
        Folder searched for result files (recursively, see ``pattern``), or one file.
    model : str or callable, optional
        Model name for every file, or ``f(path, data) -> name``. Default: ``pretrained=``
        in ``config.model_args``, else ``model_name``, else the folder / file name.
    step_from : {"auto", "model_args", "path"}, regex or callable, default "auto"
        Where the checkpoint step comes from. ``"model_args"``: ``revision=stepN``;
        ``"path"``: ``stepN`` in the path; ``"auto"``: the first, then the second; a regex
        with one group is searched in the path; a callable ``f(path, data)`` returns the
        step (``None`` for no step).
    replicate_from : regex or callable, optional
        Replicate label (seed) of a file: a regex with one group searched in the path, or
        ``f(path, data) -> str``. Default: one replicate.
    metric : "auto", "all", str or sequence of str, default "auto"
        Which metrics become tasks. ``"auto"``: one per task, the first of
        :data:`DEFAULT_METRICS` it reports; ``"all"``: every metric (names get a
        ``:metric`` suffix where a task has several); a name or list: only those.
    pattern : str, default "**/*.json"
        Glob for result files under ``directory``.
    target, proxies, chance, percent, drop_constant, min_target_units
        As for :func:`bayesproxy.read_table`.

    Returns
    -------
    BenchmarkTable
        Units ``model@step``; tasks the harness task names (``hendrycksTest-anatomy``,
        ``arc_easy``, ...).

    Raises
    ------
    LmEvalFormatError
        A file is not valid JSON, is truncated, or lacks a ``results`` mapping (named).
    EmptyTableError
        No result files, or no metric left after the ``metric`` choice.

    Examples
    --------
    >>> import json, tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> for step, acc in [(1000, 0.3), (2000, 0.4), (3000, 0.5)]:
    ...     data = {"results": {"arc_easy": {"acc,none": acc, "acc_stderr,none": 0.01}},
    ...             "config": {"model_args": f"pretrained=org/m,revision=step{step}"}}
    ...     _ = (folder / f"results_{step}.json").write_text(json.dumps(data))
    >>> table = read_lm_eval(folder)
    >>> table.units.index.tolist()
    ['org/m@1000', 'org/m@2000', 'org/m@3000']
    """
    records = lm_eval_records(
        directory,
        model=model,
        step_from=step_from,
        replicate_from=replicate_from,
        metric=metric,
        pattern=pattern,
    )
    return BenchmarkTable.from_dataframe(
        records,
        target=target,
        proxies=proxies,
        chance=chance,
        percent=percent,
        drop_constant=drop_constant,
        min_target_units=min_target_units,
    )


def lm_eval_records(
    directory: str | Path,
    *,
    model: str | Callable[[Path, Mapping[str, Any]], str] | None = None,
    step_from: StepFrom = "auto",
    replicate_from: str | Callable[[Path, Mapping[str, Any]], str] | None = None,
    metric: str | Sequence[str] = "auto",
    pattern: str = "**/*.json",
) -> pd.DataFrame:
    """Parse result files into the long form :func:`bayesproxy.read_table` reads.

    Parameters
    ----------
    directory, model, step_from, replicate_from, metric, pattern
        As for :func:`read_lm_eval`.

    Returns
    -------
    pandas.DataFrame
        Columns ``model, step, replicate, task, metric, n_shot, score, stderr, n_items,
        is_fraction, higher_is_better, source``.

    Examples
    --------
    >>> import json, tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> data = {"results": {"piqa": {"acc": 0.6, "acc_stderr": 0.01}},
    ...         "config": {"model_args": "pretrained=org/m,revision=step5"}}
    >>> _ = (folder / "a.json").write_text(json.dumps(data))
    >>> lm_eval_records(folder)[["model", "step", "task", "score"]].values.tolist()
    [['org/m', 5.0, 'piqa', 0.6]]
    """
    root = Path(directory)
    if root.is_file():
        files = [root]
    elif root.is_dir():
        files = sorted(p for p in root.glob(pattern) if p.is_file())
    else:
        raise TableError(
            f"no such file or folder: {str(root)!r}.\nHint: pass the folder holding the "
            "harness's result JSON files."
        )
    if not files:
        raise EmptyTableError(f"no files matching {pattern!r} under {str(root)!r}")
    rows: list[dict[str, Any]] = []
    for path in files:
        data = _load(path)
        rows.extend(_file_rows(path, data, model, step_from, replicate_from))
    frame = pd.DataFrame(rows)
    if frame.empty:
        raise EmptyTableError(f"the result files under {str(root)!r} report no metrics")
    frame = _choose_metrics(frame, metric)
    frame["is_fraction"] = _fractions(frame)
    if frame["higher_is_better"].isna().all():
        frame = frame.drop(columns="higher_is_better")
    else:  # unknown directions follow the kind: fractions up, losses down
        frame["higher_is_better"] = frame["higher_is_better"].where(
            frame["higher_is_better"].notna(), frame["is_fraction"]
        )
    return frame.reset_index(drop=True)


# ---------------------------------------------------------------------- one file
def _load(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise LmEvalFormatError(path, f"cannot be read as UTF-8 text ({err})") from err
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        what = "truncated JSON" if err.pos >= len(text.rstrip()) else "malformed JSON"
        raise LmEvalFormatError(path, f"{what} at line {err.lineno}, column {err.colno}") from err
    if not isinstance(data, dict):
        raise LmEvalFormatError(path, f"top level is a {type(data).__name__}, not an object")
    results = data.get("results")
    if not isinstance(results, dict):
        raise LmEvalFormatError(path, "no 'results' mapping")
    for task, metrics in results.items():
        if not isinstance(metrics, dict):
            raise LmEvalFormatError(
                path, f"results[{task!r}] is a {type(metrics).__name__}, not a mapping"
            )
    return data


def _file_rows(
    path: Path,
    data: Mapping[str, Any],
    model: str | Callable | None,
    step_from: StepFrom,
    replicate_from: str | Callable | None,
) -> list[dict[str, Any]]:
    config = data.get("config") if isinstance(data.get("config"), dict) else {}
    args = _model_args(config.get("model_args"))
    name = _model_name(path, data, args, model)
    step = _step(path, data, args, step_from)
    replicate = _replicate(path, data, replicate_from)
    n_shot_map = data.get("n-shot") if isinstance(data.get("n-shot"), dict) else {}
    samples = data.get("n-samples") if isinstance(data.get("n-samples"), dict) else {}
    directions = (
        data.get("higher_is_better") if isinstance(data.get("higher_is_better"), dict) else {}
    )
    default_shot = config.get("num_fewshot")
    rows = []
    for task, metrics in data["results"].items():
        shot = n_shot_map.get(task, default_shot)
        n_items = _n_items(samples.get(task))
        task_dirs = directions.get(task) if isinstance(directions.get(task), dict) else {}
        for key, value in metrics.items():
            base, _, filt = str(key).partition(",")
            if base.endswith("_stderr") or base in ("alias", "samples", "name"):
                continue
            score = _number(value)
            if score is None:
                if isinstance(value, str | bool) or value is None:
                    continue  # labels such as "alias" or "N/A" placeholders
                raise LmEvalFormatError(path, f"results[{task!r}][{key!r}] is {value!r}")
            stderr_key = f"{base}_stderr" + (f",{filt}" if filt else "")
            metric_name = base if filt in ("", "none") else f"{base}:{filt}"
            rows.append(
                {
                    "model": name,
                    "step": step,
                    "replicate": replicate,
                    "task": str(task),
                    "metric": metric_name,
                    "n_shot": _number(shot),
                    "score": score,
                    "stderr": _number(metrics.get(stderr_key)),
                    "n_items": n_items,
                    "higher_is_better": task_dirs.get(base),
                    "source": str(path),
                }
            )
    return rows


def _model_args(raw: object) -> dict[str, str]:
    if isinstance(raw, dict):
        return {str(k): str(v) for k, v in raw.items()}
    out = {}
    for part in str(raw or "").split(","):
        key, sep, value = part.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


def _model_name(
    path: Path, data: Mapping[str, Any], args: Mapping[str, str], model: str | Callable | None
) -> str:
    if callable(model):
        return str(model(path, data))
    if model is not None:
        return str(model)
    for candidate in (args.get("pretrained"), args.get("model"), data.get("model_name")):
        if candidate:
            return str(candidate)
    # current layout writes <output>/<model>/results_<time>.json; older files are named
    if path.stem.startswith("results"):
        return path.parent.name
    return _STEP_PATTERN.sub("", path.stem).strip("_-") or path.stem


def _step(
    path: Path, data: Mapping[str, Any], args: Mapping[str, str], step_from: StepFrom
) -> float:
    if callable(step_from):
        value = step_from(path, data)
        return math.nan if value is None else float(value)
    if step_from in ("auto", "model_args"):
        match = _STEP_PATTERN.search(args.get("revision", ""))
        if match:
            return float(match.group(1))
        if step_from == "model_args":
            return math.nan
    if step_from in ("auto", "path"):
        match = _STEP_PATTERN.search(str(path.as_posix()))
        return float(match.group(1)) if match else math.nan
    try:
        match = re.search(step_from, path.as_posix())
    except re.error as err:
        raise TableError(
            f"step_from={step_from!r} is not a valid regular expression ({err}).\nHint: use "
            "'auto', 'path', 'model_args', a regex with one group, or a function."
        ) from err
    if not match or not match.groups():
        return math.nan
    value = _number(match.group(1))
    return math.nan if value is None else value


def _replicate(path: Path, data: Mapping[str, Any], replicate_from: str | Callable | None) -> str:
    if replicate_from is None:
        return "0"
    if callable(replicate_from):
        return str(replicate_from(path, data))
    match = re.search(replicate_from, path.as_posix())
    return match.group(1) if match and match.groups() else "0"


def _n_items(raw: object) -> float | None:
    if isinstance(raw, dict):
        return _number(raw.get("effective", raw.get("original")))
    return _number(raw)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return None


# ---------------------------------------------------------------------- across files
def _choose_metrics(frame: pd.DataFrame, metric: str | Sequence[str]) -> pd.DataFrame:
    if metric == "all":
        return frame
    if metric == "auto":
        available = frame.groupby("task", sort=False)["metric"].unique()
        chosen = {}
        for task, names in available.items():
            rank = {m: i for i, m in enumerate(DEFAULT_METRICS)}
            chosen[task] = min(names, key=lambda m: (rank.get(m.split(":")[0], len(rank)), m))
        keep = frame["metric"] == frame["task"].map(chosen)
        return frame[keep]
    wanted = [metric] if isinstance(metric, str) else list(metric)
    kept = frame[frame["metric"].isin(wanted)]
    if kept.empty:
        raise EmptyTableError(
            f"no task reports metric(s) {wanted}; reported are "
            f"{sorted(frame['metric'].unique())[:10]}"
        )
    return kept


def _fractions(frame: pd.DataFrame) -> pd.Series:
    """Per row: is the metric a fraction in [0, 1]? Known names first, then the values."""
    in_unit = frame.groupby("metric")["score"].agg(lambda s: bool(s.between(0, 1).all()))
    kind = {}
    for name in frame["metric"].unique():
        base = name.split(":")[0]
        if base in _FRACTION_METRICS:
            kind[name] = True
        elif is_metric_name(base) or "perplexity" in base or "likelihood" in base:
            kind[name] = False
        else:
            kind[name] = bool(in_unit[name])
    return frame["metric"].map(kind).astype(bool)
