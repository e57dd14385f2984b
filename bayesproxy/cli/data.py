"""``bayesproxy info``: summarise a benchmark table before fitting anything."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bayesproxy.cli._app import app


@app.command()
def info(
    table: Annotated[
        Path,
        typer.Argument(
            help="Benchmark table: a long or wide .csv / .csv.gz / .parquet file, or a folder "
            "of lm-evaluation-harness result JSON files."
        ),
    ],
    target: Annotated[
        str | None, typer.Option("--target", help="Mark this task as the target.")
    ] = None,
    drop_constant: Annotated[
        bool, typer.Option(help="Drop tasks without variation instead of failing.")
    ] = False,
    run_columns: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated columns naming the training run (e.g. model,train_variant)."
        ),
    ] = None,
    max_tasks: Annotated[int, typer.Option(help="Tasks to list (0: all).", min=0)] = 30,
) -> None:
    """Print a table's units, tasks, replicates, missing share and chance levels.

    Reads TABLE exactly as the fitting commands do, so any problem with the input shows
    up here first, with the rows or columns to fix.
    """
    import pandas as pd

    from bayesproxy.io import read_lm_eval, read_table

    if table.is_dir() or table.suffix.lower() == ".json":
        bench = read_lm_eval(table, target=target, drop_constant=drop_constant)
    else:
        runs = run_columns.split(",") if run_columns else None
        bench = read_table(table, target=target, drop_constant=drop_constant, run_columns=runs)
    units = bench.units
    typer.echo(repr(bench))
    n_runs = units["run"].nunique()
    has_steps = units["step"].notna().any()
    families = units["family"].replace("", pd.NA).nunique()
    typer.echo(f"units: {bench.n_units} ({n_runs} runs, {families} families)")
    if has_steps:
        per_run = units.groupby("run").size()
        typer.echo(f"checkpoints per run: {per_run.min()}-{per_run.max()}")
    replicates = ", ".join(str(r) for r in bench.dataset["replicate"].values[:10])
    typer.echo(f"replicates: {bench.n_replicates} ({replicates})")
    missing = 1.0 - float(bench.observed.mean())
    typer.echo(f"missing (unit, task) cells: {missing:.1%}")
    for name in ("params", "tokens", "flops"):
        known = units[name].notna().mean()
        typer.echo(f"{name} known for {known:.0%} of units")
    summary = bench.summary()
    shown = summary if max_tasks == 0 else summary.head(max_tasks)
    cols = [
        "role",
        "kind",
        "chance",
        "higher_is_better",
        "n_observed",
        "missing_share",
        "min",
        "max",
    ]
    with pd.option_context(
        "display.width", 160, "display.max_columns", 20, "display.max_rows", None
    ):
        typer.echo(f"tasks: {bench.n_tasks}")
        typer.echo(shown[cols].round(3).to_string())
    if len(shown) < len(summary):
        typer.echo(f"... {len(summary) - len(shown)} more tasks (use --max-tasks 0 to list all)")
