"""The command line's root: help, version, and errors as one-line messages."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

import bayesproxy
from bayesproxy.cli import app

runner = CliRunner()


def test_version_prints_package_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"bayesproxy {bayesproxy.__version__}"


def test_help_lists_every_command_with_its_purpose():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("demo", "fit", "forecast", "weights", "backtest", "report", "tokens", "info"):
        assert command in result.output


def test_help_does_not_import_pymc():
    # `bayesproxy --help` must answer at once: no PyMC / PyTensor import on the way.
    code = (
        "import sys; from bayesproxy.cli import app; "
        "from typer.testing import CliRunner; CliRunner().invoke(app, ['--help']); "
        "print('pymc' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
