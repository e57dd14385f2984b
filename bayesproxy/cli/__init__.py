"""The ``bayesproxy`` command line.

Every command module registers itself on :data:`bayesproxy.cli._app.app`; importing them
here assembles the application. Commands import heavy libraries (PyMC, ArviZ, matplotlib)
inside their bodies so ``bayesproxy --help`` answers at once.
"""

from __future__ import annotations

import sys

import typer

# importing each command module registers its commands on the app
from bayesproxy.cli import backtest as _backtest  # noqa: F401
from bayesproxy.cli import data as _data  # noqa: F401
from bayesproxy.cli import main as _main  # noqa: F401
from bayesproxy.cli import model as _model  # noqa: F401
from bayesproxy.cli import report as _report  # noqa: F401
from bayesproxy.cli import tokens as _tokens  # noqa: F401
from bayesproxy.cli._app import app

__all__ = ["app", "main"]


def main() -> None:
    """Run the command line, turning bayesproxy errors into one-line messages.

    A :class:`~bayesproxy.errors.BayesproxyError` is a problem with the user's input or
    fit, not a bug: it prints as ``error: ...`` with its hint, and the exit status is 2.
    """
    from bayesproxy.errors import BayesproxyError

    try:
        app()
    except BayesproxyError as error:
        typer.echo(f"error: {error}", err=True)
        sys.exit(2)
