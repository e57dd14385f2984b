"""The fit / forecast / weights commands, end to end on a simulated CSV."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

import bayesproxy.cli.model  # noqa: F401  (registers fit, forecast, weights)
from bayesproxy import datasets
from bayesproxy.cli._app import app

runner = CliRunner()


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    sim = datasets.simulate(
        n_families=2, n_runs_per_family=2, n_checkpoints=4, n_proxies=5, holdout_share=0.25
    )
    folder = tmp_path_factory.mktemp("cli")
    csv = folder / "table.csv"
    sim.table.to_dataframe().to_csv(csv, index=False)
    out = folder / "fit.nc"
    # 2 x 50 draws cannot reach the ESS floor of 200: --strict must exit 1, fit still saved
    result = runner.invoke(
        app,
        [
            "fit",
            str(csv),
            "--target",
            "target",
            "--draws",
            "50",
            "--tune",
            "100",
            "--chains",
            "2",
            "--seed",
            "3",
            "--strict",
            "--out",
            str(out),
        ],
    )
    return sim, csv, out, result


def test_fit_strict_exits_nonzero_but_writes(fitted):
    _, _, out, result = fitted
    assert result.exit_code == 1, result.output
    assert "did not converge" in result.output
    assert out.exists()


def test_forecast_and_weights_csv(fitted, tmp_path):
    sim, csv, out, _ = fitted
    fc = tmp_path / "fc.csv"
    result = runner.invoke(
        app, ["forecast", str(out), "--threshold", "0.5", "--prob", "0.8", "--out", str(fc)]
    )
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(fc)
    assert list(frame.columns) == [
        "model",
        "step",
        "mean",
        "median",
        "lower",
        "upper",
        "p_above",
        "distance",
        "extrapolation",
    ]
    assert len(frame) == int((~sim.table.target_observed).sum())
    assert frame["p_above"].between(0, 1).all()

    new = tmp_path / "new.csv"
    result = runner.invoke(app, ["forecast", str(out), "--table", str(csv), "--out", str(new)])
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(new)) == sim.table.n_units

    w = tmp_path / "w.csv"
    result = runner.invoke(app, ["weights", str(out), "--out", str(w)])
    assert result.exit_code == 0, result.output
    weights = pd.read_csv(w)
    assert set(weights["proxy"]) == set(sim.table.proxies)
    assert {"alignment", "stability", "weight", "weight_lower"} <= set(weights.columns)


def test_errors_are_one_line_exit_2(fitted, tmp_path):
    _, csv, _, _ = fitted
    bad = tmp_path / "bad.nc"
    bad.write_text("nope")
    result = runner.invoke(app, ["weights", str(bad), "--out", str(tmp_path / "w.csv")])
    assert result.exit_code == 2
    assert result.output.startswith("error:") and "Traceback" not in result.output
    result = runner.invoke(
        app, ["fit", str(csv), "--target", "no_such_task", "--out", str(tmp_path / "f.nc")]
    )
    assert result.exit_code == 2 and "Traceback" not in result.output
