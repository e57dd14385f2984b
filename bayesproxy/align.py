"""Checkpoint alignment: put every task of a run on common steps.

Proxies and the target are often evaluated at different steps of one run (Pythia scores
arithmetic at 13k, 39k, ... and other tasks at 3k + 10k·i). :func:`align_checkpoints`
interpolates each task's score linearly in log tokens (log step when a run's tokens are
unknown) **within each run**, never across runs, and never past the steps a task was
evaluated at in that run: such cells stay NaN.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

from bayesproxy.errors import EmptyTableError, TableError
from bayesproxy.table import BenchmarkTable, make_dataset

__all__ = ["align_checkpoints"]


def align_checkpoints(
    table: BenchmarkTable,
    *,
    steps: Literal["target"] | Sequence[float] | np.ndarray | None = None,
    tasks: Sequence[str] | None = None,
    scale: Literal["auto", "tokens", "step"] = "auto",
) -> BenchmarkTable:
    """Interpolate tasks onto common checkpoints within each run.

    Parameters
    ----------
    table : BenchmarkTable
        A table with steps (units are ``run@step``).
    steps : None, "target" or array of float, default None
        The steps to align onto, per run: ``None`` keeps every step any task was evaluated
        at; ``"target"`` the steps where the target is observed; an array the same steps
        for every run (steps outside a run's evaluated range are left out for that run).
    tasks : sequence of str, optional
        Tasks to interpolate (default: all). Other tasks keep their values at steps where
        they were evaluated and are NaN elsewhere.
    scale : {"auto", "tokens", "step"}, default "auto"
        Interpolation variable: log tokens, or log step; ``"auto"`` uses tokens where a
        run has them at every checkpoint.

    Returns
    -------
    BenchmarkTable
        Same tasks and replicates; units are the aligned (run, step) pairs. ``stderr`` is
        interpolated like the score; ``n_items`` is the smaller of the two neighbours'.
        Attribute ``aligned_on`` records the scale used.

    Raises
    ------
    TableError
        The table has no steps, ``steps="target"`` without a target, or an unknown task.
    EmptyTableError
        No run has any of the requested steps in range.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from bayesproxy.table import BenchmarkTable
    >>> df = pd.DataFrame({
    ...     "model": "m", "step": [1000, 4000, 2000, 4000],
    ...     "task": ["proxy", "proxy", "target", "target"], "score": [0.3, 0.5, 0.26, 0.4],
    ... })
    >>> aligned = align_checkpoints(BenchmarkTable.from_dataframe(df), steps=[2000])
    >>> round(float(aligned.score.sel(task="proxy").item()), 3)
    0.4
    """
    ds = table.dataset
    unit_steps = ds["step"].values.astype(float)
    if not np.isfinite(unit_steps).any():
        raise TableError(
            "the table has no checkpoint steps to align.\nHint: read a table with a 'step' "
            "column (one row per run x step x task)."
        )
    if isinstance(steps, str) and steps != "target":
        raise TableError(f"steps={steps!r} is not understood.\nHint: use None, 'target' or a list.")
    if isinstance(steps, str) and not table.target:
        raise TableError(
            "steps='target' needs a target.\nHint: call table.with_target(name) first."
        )
    if scale not in ("auto", "tokens", "step"):
        raise TableError(
            f"scale={scale!r} is not understood.\nHint: use 'auto', 'tokens' or 'step'."
        )
    interp_tasks = set(table.tasks if tasks is None else [str(t) for t in tasks])
    unknown = interp_tasks - set(table.tasks)
    if unknown:
        from bayesproxy.errors import UnknownTaskError

        raise UnknownTaskError(sorted(unknown)[0], table.tasks)
    fixed = None if steps is None or isinstance(steps, str) else np.unique(np.asarray(steps, float))

    score = ds["score"].values
    stderr = ds["stderr"].values
    n_items = ds["n_items"].values
    runs = ds["run"].values.astype(str)
    tokens = ds["tokens"].values.astype(float)
    flops = ds["flops"].values.astype(float)
    target_j = table.tasks.index(table.target) if table.target else -1
    interp_mask = np.array([t in interp_tasks for t in table.tasks])
    n_t, n_r = ds.sizes["task"], ds.sizes["replicate"]

    blocks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    unit_rows: list[dict[str, object]] = []
    scales_used: set[str] = set()
    for run in pd.unique(runs):
        idx = np.flatnonzero((runs == run) & np.isfinite(unit_steps))
        if idx.size == 0:
            continue
        idx = idx[np.argsort(unit_steps[idx], kind="stable")]
        s_run = unit_steps[idx]
        use_tokens = scale == "tokens" or (
            scale == "auto" and np.all(np.isfinite(tokens[idx]) & (tokens[idx] > 0))
        )
        if use_tokens and not np.all(np.isfinite(tokens[idx]) & (tokens[idx] > 0)):
            raise TableError(
                f"run {run!r} lacks tokens at some checkpoints, so scale='tokens' cannot be "
                "used.\nHint: pass scale='auto' or scale='step'."
            )
        scales_used.add("tokens" if use_tokens else "step")
        if steps is None:
            new_steps = s_run
        elif isinstance(steps, str):
            has_target = np.isfinite(score[idx, target_j, :]).any(axis=1)
            new_steps = s_run[has_target]
        else:
            new_steps = fixed[(fixed >= s_run.min()) & (fixed <= s_run.max())]
        if new_steps.size == 0:
            continue
        x_old = _position(s_run, tokens[idx], use_tokens)
        new_tokens = _interp_or_nan(new_steps, s_run, tokens[idx])
        new_flops = _interp_or_nan(new_steps, s_run, flops[idx])
        x_new = np.log(new_tokens) if use_tokens else np.log1p(np.maximum(new_steps, 0.0))
        sc = np.full((new_steps.size, n_t, n_r), np.nan)
        se = np.full_like(sc, np.nan)
        ni = np.full_like(sc, np.nan)
        for j in range(n_t):
            for r in range(n_r):
                y = score[idx, j, r]
                ok = np.isfinite(y)
                if not ok.any():
                    continue
                if interp_mask[j]:
                    sc[:, j, r], se[:, j, r], ni[:, j, r] = _interp_cell(
                        x_new, x_old[ok], y[ok], stderr[idx, j, r][ok], n_items[idx, j, r][ok]
                    )
                else:  # exact matches only
                    pos = {s: k for k, s in zip(np.flatnonzero(ok), s_run[ok], strict=True)}
                    for i, s in enumerate(new_steps):
                        if s in pos:
                            k = pos[s]
                            sc[i, j, r], se[i, j, r] = y[k], stderr[idx[k], j, r]
                            ni[i, j, r] = n_items[idx[k], j, r]
        first = idx[0]
        for i, s in enumerate(new_steps):
            unit_rows.append(
                {
                    "label": f"{run}@{s:.0f}" if float(s).is_integer() else f"{run}@{s:g}",
                    "model": str(ds["model"].values[first]),
                    "run": str(run),
                    "step": float(s),
                    "family": str(ds["family"].values[first]),
                    "params": float(ds["params"].values[first]),
                    "tokens": new_tokens[i],
                    "flops": new_flops[i],
                }
            )
        blocks.append((sc, se, ni))
    if not blocks:
        raise EmptyTableError("no run has any of the requested steps within its evaluated range")
    units = pd.DataFrame(unit_rows).set_index("label")
    tasks_frame = table.task_info
    out = make_dataset(
        score=np.concatenate([b[0] for b in blocks]),
        stderr=np.concatenate([b[1] for b in blocks]),
        n_items=np.concatenate([b[2] for b in blocks]),
        units=units,
        tasks=tasks_frame,
        replicates=[str(r) for r in ds["replicate"].values],
        target=table.target,
        attrs={**ds.attrs, "aligned_on": "/".join(sorted(scales_used))},
    )
    return BenchmarkTable(out, min_target_units=0)


def _position(steps: np.ndarray, tokens: np.ndarray, use_tokens: bool) -> np.ndarray:
    return np.log(tokens) if use_tokens else np.log1p(np.maximum(steps, 0.0))


def _interp_or_nan(x_new: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    ok = np.isfinite(y)
    if ok.sum() == 0:
        return np.full(x_new.shape, np.nan)
    if ok.sum() == 1:
        return np.where(x_new == x[ok][0], y[ok][0], np.nan)
    out = np.interp(x_new, x[ok], y[ok])
    return np.where((x_new >= x[ok].min()) & (x_new <= x[ok].max()), out, np.nan)


def _interp_cell(
    x_new: np.ndarray, x: np.ndarray, y: np.ndarray, se: np.ndarray, n: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    inside = (x_new >= x.min()) & (x_new <= x.max())
    score = np.where(inside, np.interp(x_new, x, y), np.nan)
    stderr = (
        np.where(inside, np.interp(x_new, x, se), np.nan)
        if np.isfinite(se).all()
        else (np.full(x_new.shape, np.nan))
    )
    # neighbours' item counts: the smaller one is the honest count for an interpolated score
    hi = np.clip(np.searchsorted(x, x_new, side="left"), 0, x.size - 1)
    lo = np.clip(hi - 1, 0, x.size - 1)
    exact = np.isclose(x[hi], x_new)
    items = np.where(exact, n[hi], np.fmin(n[lo], n[hi]))
    items = np.where(inside, items, np.nan)
    return score, stderr, items
