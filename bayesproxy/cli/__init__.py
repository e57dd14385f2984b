"""The ``bayesproxy`` command line.

Every command module registers itself on :data:`bayesproxy.cli._app.app`; importing them
here assembles the application. Commands import heavy libraries (PyMC, ArviZ, matplotlib)
inside their bodies so ``bayesproxy --help`` answers at once.
"""

from __future__ import annotations

import sys

import typer

from bayesproxy.cli import main as _main  # noqa: F401  (registers version, demo)
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
