"""Top-level commands: ``--version`` and ``demo``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bayesproxy.cli._app import app


def _print_version(value: bool) -> None:
    if value:
        from bayesproxy import __version__

        typer.echo(f"bayesproxy {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the installed bayesproxy version and exit.",
        ),
    ] = False,
) -> None:
    """Bayesian forecasting of emergent LLM abilities from proxy evaluations.

    Read a benchmark table (one row per model x task, long CSV), fit the hierarchical
    proxy model, forecast the emergent target with calibrated, bounded intervals, and
    compare against the source methods and baselines in a backtest.
    """


@app.command()
def demo(
    out: Annotated[
        Path, typer.Option("--out", help="Folder for the demo's outputs (created if needed).")
    ] = Path("bayesproxy-demo"),
    draws: Annotated[int, typer.Option(help="Posterior draws per chain.")] = 2000,
    tune: Annotated[int, typer.Option(help="Tuning steps per chain.")] = 1000,
    chains: Annotated[int, typer.Option(help="Number of MCMC chains.")] = 4,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same forecasts).")] = 0,
) -> None:
    """Run the whole workflow on the embedded example table.

    Simulates the package's default benchmark table (known ground truth), fits the
    hierarchical proxy model, forecasts the units whose target is missing, and writes the
    table, the fit, forecasts, proxy weights and an HTML report into OUT.
    """
    from bayesproxy import ProxyForecaster, datasets
    from bayesproxy.report import build_report

    out.mkdir(parents=True, exist_ok=True)
    example = datasets.load_example()
    table = example.table
    table.to_dataframe().to_csv(out / "table.csv", index=False)
    typer.echo(
        f"example table: {table.n_units} units, {len(table.tasks)} tasks, target {table.target!r}"
    )

    forecaster = ProxyForecaster(target=table.target).fit(
        table, draws=draws, tune=tune, chains=chains, random_seed=seed
    )
    forecaster.save(out / "fit.nc")
    forecasts = forecaster.forecast(prob=0.9)
    forecasts.to_csv(out / "forecasts.csv", index=False)
    forecaster.weights().to_csv(out / "weights.csv", index=False)
    report_path = build_report(forecaster, path=out / "report.html")

    n_flagged = int(forecasts["extrapolation"].sum())
    typer.echo(
        f"forecast {len(forecasts)} units ({n_flagged} flagged as extrapolation); "
        f"outputs in {out.resolve()}"
    )
    typer.echo(f"report: {Path(report_path).resolve()}")
