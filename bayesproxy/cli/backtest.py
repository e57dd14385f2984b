"""``bayesproxy backtest``: rank forecasters on the same splits and metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bayesproxy.cli._app import app


def _split_list(values: list[str]) -> list[str]:
    # accept both repeated options and comma-separated lists
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


@app.command()
def backtest(
    table: Annotated[Path, typer.Argument(help="Benchmark table (long CSV, one row per score).")],
    target: Annotated[str, typer.Option("--target", help="The task to forecast.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the outputs (created).")],
    split: Annotated[
        list[str],
        typer.Option(
            "--split",
            help="Split(s): compute:8.4e22, early-late:0.3, early-late:step=50000, "
            "small-large:1e9, family, unit. Repeat or comma-separate.",
        ),
    ],
    methods: Annotated[
        list[str],
        typer.Option(
            "--methods",
            help="Method name(s), e.g. compute-sigmoid,pca-sigmoid,proxy-bayes. "
            "Default: every registered method.",
        ),
    ] = [],  # noqa: B006 - typer reads the default, never mutates it
    workers: Annotated[
        int, typer.Option(help="Worker processes (1 runs in this process).", min=1)
    ] = 2,
    scheduler: Annotated[
        str | None,
        typer.Option(help="Address of a Dask scheduler to run the jobs on instead."),
    ] = None,
    proxies: Annotated[
        list[str],
        typer.Option("--proxies", help="Keep only these proxy tasks (default: all others)."),
    ] = [],  # noqa: B006 - typer reads the default, never mutates it
    metric: Annotated[str, typer.Option(help="Metric shown in comparison.png.")] = "mae",
    n_samples: Annotated[int, typer.Option(help="Predictive samples per unit.", min=1)] = 1000,
    seed: Annotated[int, typer.Option(help="Random seed of the predictive sampling.")] = 0,
) -> None:
    """Backtest forecasting methods on TABLE and write results, predictions and a plot.

    Every method is fitted on each fold's training units and forecasts its held-out units;
    OUT receives results.csv (method, split, fold, metric, value; failed folds as 'error'
    rows), predictions.csv (per-unit forecasts vs actual), summary.csv and comparison.png.
    """
    from concurrent.futures import ProcessPoolExecutor

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bayesproxy.backtest import backtest as run_backtest
    from bayesproxy.backtest.plotting import plot_backtest_comparison
    from bayesproxy.io import read_table
    from bayesproxy.methods.base import available_methods

    data = read_table(table, target=target, proxies=_split_list(proxies) or None)
    chosen = _split_list(methods) or available_methods()
    splits = _split_list(split)
    out.mkdir(parents=True, exist_ok=True)

    client = None
    if scheduler is not None:
        from distributed import Client

        client = Client(scheduler)
        executor = client.get_executor()
    elif workers == 1:
        executor = "serial"
    else:
        import multiprocessing

        executor = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        result = run_backtest(
            data,
            target=target,
            methods=chosen,
            splits=splits,
            executor=executor,
            n_samples=n_samples,
            random_seed=seed,
        )
    finally:
        if client is not None:
            client.close()
        elif not isinstance(executor, str):
            executor.shutdown()

    result.results.to_csv(out / "results.csv", index=False)
    result.predictions.to_csv(out / "predictions.csv", index=False)
    summary = result.summary()
    summary.to_csv(out / "summary.csv", index=False)
    ax = plot_backtest_comparison(result, metric=metric)
    ax.figure.savefig(out / "comparison.png", dpi=150, bbox_inches="tight")
    plt.close(ax.figure)

    cols = [
        c
        for c in ("method", "split", "mae", "rmse", "spearman", "crps", "coverage_90")
        if c in summary
    ]
    typer.echo(summary[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    n_err = len(result.errors)
    if n_err:
        typer.echo(f"{n_err} job(s) failed: see the 'error' rows of results.csv", err=True)
    typer.echo(f"outputs in {out.resolve()}")
