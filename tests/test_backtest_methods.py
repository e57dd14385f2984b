"""The harness with the package's own forecasters, on tables where the right answer is known."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from bayesproxy.backtest import MethodSpec, backtest

TARGET = "target"


def sigmoid_table(n: int = 40, *, seed: int = 1, noise: float = 0.01) -> xr.Dataset:
    """Target = sigmoid in log10 FLOPs (an emergence curve), three families."""
    rng = np.random.default_rng(seed)
    logc = np.sort(rng.uniform(20.0, 24.5, n))
    target = 1 / (1 + np.exp(-2.5 * (logc - 22.5))) + rng.normal(0, noise, n)
    proxy = 0.25 + 0.1 * (logc - 20) + rng.normal(0, noise, n)
    score = np.clip(np.stack([proxy, target], axis=1), 0.0, 1.0)[:, :, None]
    units = [f"m{i:02d}" for i in range(n)]
    return xr.Dataset(
        {
            "score": (("unit", "task", "replicate"), score),
            "stderr": (("unit", "task", "replicate"), np.full_like(score, np.nan)),
            "n_items": (("unit", "task", "replicate"), np.full_like(score, np.nan)),
        },
        coords={
            "unit": units,
            "model": ("unit", units),
            "step": ("unit", np.full(n, np.nan)),
            "run": ("unit", units),
            "family": ("unit", np.array(["a", "b", "c"])[np.arange(n) % 3]),
            "params": ("unit", 10 ** (logc - 12)),
            "tokens": ("unit", np.full(n, np.nan)),
            "flops": ("unit", 10**logc),
            "task": ["proxy", TARGET],
            "chance": ("task", [0.0, 0.0]),
            "kind": ("task", ["accuracy", "accuracy"]),
            "higher_is_better": ("task", [True, True]),
            "replicate": ["0"],
        },
        attrs={"target": TARGET},
    )


@pytest.fixture(scope="module")
def result():
    from bayesproxy.table import BenchmarkTable

    table = BenchmarkTable(sigmoid_table())
    return backtest(
        table,
        target=TARGET,
        methods=[MethodSpec("compute-sigmoid", options={"n_boot": 50})],
        splits=["compute:3e23", "family"],
        executor="serial",
        n_samples=200,
        progress=False,
    )


def test_compute_sigmoid_recovers_a_compute_sigmoid_truth(result):
    assert result.errors.empty, result.errors.to_string()
    summary = result.summary().set_index("split")
    # the truth is in the method's class: errors near the noise level, not near chance
    assert summary.loc["family", "mae"] < 0.05
    assert summary.loc["compute:3e+23", "mae"] < 0.08
    assert summary.loc["family", "spearman"] > 0.9
    # bootstrap intervals exist and mean something
    assert 0 < summary.loc["family", "coverage_90"] <= 1
    assert np.isnan(summary.loc["family", "elpd"])  # no likelihood, says so with NaN


def test_predictions_carry_forecast_columns_and_actuals(result):
    preds = result.predictions
    for column in ("mean", "lower", "upper", "distance", "extrapolation", "actual"):
        assert column in preds
    above = preds[preds["split"] == "compute:3e+23"]
    assert above["extrapolation"].all()  # every held-out unit lies above the training compute
