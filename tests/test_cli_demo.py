"""The README's first command: the demo runs the whole workflow and leaves its outputs."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from bayesproxy.cli import app


# a short budget for speed: the gate may warn here; the demo's defaults are what converge
@pytest.mark.filterwarnings("ignore::bayesproxy.errors.ConvergenceWarning")
def test_demo_writes_table_fit_forecasts_weights_and_report(tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(
        app, ["demo", "--out", str(out), "--draws", "100", "--tune", "150", "--chains", "2"]
    )
    assert result.exit_code == 0, result.output
    for name in ("table.csv", "fit.nc", "forecasts.csv", "weights.csv", "report.html"):
        assert (out / name).stat().st_size > 0, name
    assert f"report: {(out / 'report.html').resolve()}" in result.output

    forecasts = pd.read_csv(out / "forecasts.csv")
    assert len(forecasts) > 0
    assert (forecasts["lower"] <= forecasts["median"]).all()
    assert (forecasts["median"] <= forecasts["upper"]).all()
    assert "<img" in (out / "report.html").read_text()
