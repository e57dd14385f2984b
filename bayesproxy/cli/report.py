"""``bayesproxy report``: a shareable HTML or Markdown report on a saved fit."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bayesproxy.cli._app import app


@app.command()
def report(
    fit: Annotated[
        Path, typer.Argument(help="A fit saved by ProxyForecaster.save (netCDF, e.g. fit.nc).")
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="Report file: .html (one self-contained page) or .md (figures written to "
            "<name>_files/ beside it).",
        ),
    ] = Path("report.html"),
    table: Annotated[
        Path | None,
        typer.Option(
            "--table",
            help="The benchmark table the fit was made on (adds its summary and the observed "
            "target scores).",
        ),
    ] = None,
    prob: Annotated[
        float, typer.Option("--prob", help="Probability of every interval in the report.")
    ] = 0.9,
    title: Annotated[str | None, typer.Option(help="Report title.")] = None,
) -> None:
    """Write a report on FIT: data, convergence verdict, proxy weights, forecasts, checks.

    The HTML report embeds its figures and styles, so it opens offline and can be mailed
    as one file.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only: never open a window

    from bayesproxy.model import ProxyForecaster
    from bayesproxy.report import build_report

    forecaster = ProxyForecaster.load(fit)
    bench = None
    if table is not None:
        from bayesproxy.io import read_table

        bench = read_table(table, target=forecaster.target)
    path = build_report(forecaster, path=out, table=bench, ci_prob=prob, title=title)
    typer.echo(f"report: {path.resolve()}")
