"""``bayesproxy fit``, ``forecast`` and ``weights``: the proxy model from the command line."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from bayesproxy.cli._app import app


def _read(path: Path, *, target: str | None, proxies: list[str] | None = None):
    from bayesproxy.io import read_table

    return read_table(path, target=target, proxies=proxies)


class Kind(StrEnum):
    """What ``bayesproxy forecast`` forecasts."""

    observed = "observed"
    true = "true"


@contextmanager
def _user_errors() -> Iterator[None]:
    """Print a bayesproxy error as one line (no traceback) and exit with status 2."""
    from bayesproxy.errors import BayesproxyError

    try:
        yield
    except BayesproxyError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(code=2) from None


def _status(message: str) -> None:
    # progress notes only on a terminal; files and pipes stay clean
    if sys.stderr.isatty():
        typer.echo(message, err=True)


@app.command()
def fit(
    table: Annotated[Path, typer.Argument(help="Benchmark table (long CSV / parquet).")],
    target: Annotated[str, typer.Option("--target", help="The task to forecast.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the fit (netCDF).")],
    proxies: Annotated[
        str | None, typer.Option(help="Comma-separated proxy tasks (default: all others).")
    ] = None,
    draws: Annotated[int, typer.Option(help="Posterior draws per chain.", min=1)] = 2000,
    tune: Annotated[int, typer.Option(help="Tuning steps per chain.", min=1)] = 1000,
    chains: Annotated[int, typer.Option(help="Number of chains.", min=1)] = 4,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same forecasts).")] = 0,
    n_factors: Annotated[int, typer.Option(help="Latent capability dimensions.")] = 1,
    target_accept: Annotated[float, typer.Option(help="NUTS target acceptance.")] = 0.9,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit non-zero when the convergence gate fails.")
    ] = False,
) -> None:
    """Fit the hierarchical proxy model to TABLE and save it to OUT.

    Units that have proxies but no TARGET row are forecast by ``bayesproxy forecast``.
    The convergence gate (R-hat, ESS, divergences) runs after sampling: failures warn, or
    with --strict exit with status 1 (the fit is still written, for inspection).
    """
    with _user_errors():
        _fit(
            table, target, out, proxies, draws, tune, chains, seed, n_factors, target_accept, strict
        )


def _fit(
    table: Path,
    target: str,
    out: Path,
    proxies: str | None,
    draws: int,
    tune: int,
    chains: int,
    seed: int,
    n_factors: int,
    target_accept: float,
    strict: bool,
) -> None:
    import warnings

    from bayesproxy.errors import ConvergenceWarning
    from bayesproxy.model import ProxyForecaster

    proxy_list = [p.strip() for p in proxies.split(",") if p.strip()] if proxies else None
    bench = _read(table, target=target, proxies=proxy_list)
    _status(f"{bench!r}\nsampling {chains} chains x {draws} draws (tune {tune}) ...")
    forecaster = ProxyForecaster(
        target=target, proxies=proxy_list, n_factors=n_factors, target_accept=target_accept
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        forecaster.fit(bench, draws=draws, tune=tune, chains=chains, random_seed=seed)
    path = forecaster.save(out)
    failed = [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    for w in caught:
        if w not in failed:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    typer.echo(f"fit written to {path}")
    if failed:
        typer.echo(f"warning: {failed[0].message}", err=True)
        if strict:
            raise typer.Exit(code=1)


@app.command()
def forecast(
    fit_path: Annotated[Path, typer.Argument(metavar="FIT.nc", help="A saved fit.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the forecasts (CSV).")],
    table: Annotated[
        Path | None, typer.Option("--table", help="New units to forecast (long CSV).")
    ] = None,
    prob: Annotated[float, typer.Option(help="Central interval probability.")] = 0.9,
    threshold: Annotated[
        float | None, typer.Option(help="Report P(target > THRESHOLD) as p_above.")
    ] = None,
    kind: Annotated[
        Kind,
        typer.Option(
            help="observed: the score a new evaluation would report (with its sampling "
            "noise); true: the unit's expected score, between chance and the ceiling.",
        ),
    ] = Kind.observed,
) -> None:
    """Forecast the target from a saved fit, without re-running MCMC.

    Without --table, forecasts the fitted table's units whose target is missing. Columns:
    model, step, mean, median, lower, upper, p_above, distance, extrapolation.
    """
    from bayesproxy.model import ProxyForecaster

    with _user_errors():
        forecaster = ProxyForecaster.load(fit_path)
        new = _read(table, target=None) if table is not None else None
        frame = forecaster.forecast(new, prob=prob, threshold=threshold, kind=kind.value)
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.drop(columns=["unit"]).to_csv(out, index=False)
    flagged = int(frame["extrapolation"].sum())
    typer.echo(f"{len(frame)} forecasts ({flagged} extrapolations) written to {out}")


@app.command()
def weights(
    fit_path: Annotated[Path, typer.Argument(metavar="FIT.nc", help="A saved fit.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the weights (CSV).")],
    prob: Annotated[float, typer.Option(help="Central interval probability.")] = 0.9,
) -> None:
    """Write each proxy's alignment, stability and weight with intervals."""
    from bayesproxy.model import ProxyForecaster

    with _user_errors():
        frame = ProxyForecaster.load(fit_path).weights(prob=prob)
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out, index=False)
    typer.echo(f"weights of {len(frame)} proxies written to {out}")
