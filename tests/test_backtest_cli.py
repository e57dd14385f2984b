"""``bayesproxy backtest``: a CSV in, results / predictions / plot out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import bayesproxy.cli.backtest  # noqa: F401  (registers the command)
from bayesproxy.cli._app import app

runner = CliRunner()


@pytest.fixture(scope="module")
def table_csv(tmp_path_factory):
    rng = np.random.default_rng(5)
    n = 30
    logc = np.sort(rng.uniform(20, 24.5, n))
    target = 1 / (1 + np.exp(-2.0 * (logc - 22.5))) + rng.normal(0, 0.01, n)
    rows = []
    for i in range(n):
        common = {"model": f"m{i:02d}", "family": "abc"[i % 3], "flops": 10 ** logc[i]}
        rows.append({**common, "task": "proxy", "score": 0.3 + 0.1 * (logc[i] - 20)})
        rows.append({**common, "task": "target", "score": float(np.clip(target[i], 0, 1))})
    path = tmp_path_factory.mktemp("cli") / "table.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_backtest_command_writes_results_predictions_and_plot(table_csv, tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        [
            "backtest",
            str(table_csv),
            "--target",
            "target",
            "--split",
            "compute:1e23",
            "--split",
            "family",
            "--methods",
            "compute-sigmoid,mean-proxy-sigmoid",
            "--out",
            str(out),
            "--workers",
            "1",
            "--n-samples",
            "100",
        ],
    )
    assert result.exit_code == 0, result.output
    results = pd.read_csv(out / "results.csv")
    assert set(results["method"]) == {"compute-sigmoid", "mean-proxy-sigmoid"}
    assert set(results["split"]) == {"compute:1e+23", "family"}
    assert (results["metric"] != "error").all()
    preds = pd.read_csv(out / "predictions.csv")
    assert {"unit", "mean", "actual"} <= set(preds.columns)
    assert (out / "comparison.png").stat().st_size > 10_000
    assert "compute-sigmoid" in result.output


def test_backtest_command_bad_split_is_a_bayesproxy_error(table_csv, tmp_path):
    from bayesproxy.errors import BayesproxyError

    result = runner.invoke(
        app,
        [
            "backtest",
            str(table_csv),
            "--target",
            "target",
            "--split",
            "weekly",
            "--out",
            str(tmp_path),
            "--workers",
            "1",
        ],
    )
    assert result.exit_code != 0
    assert isinstance(result.exception, BayesproxyError)
    assert "cannot parse split 'weekly'" in str(result.exception)
