"""The backtest harness end to end: jobs, scoring, error rows, executors.

The forecaster here is a deliberately small one written for these tests (a Gaussian linear
regression of the target on log FLOPs); it follows the Forecaster protocol, so the harness
runs it exactly as it runs the package's methods.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats

from bayesproxy.backtest import BacktestResult, MethodSpec, backtest, mask_target
from bayesproxy.backtest.harness import RESULT_COLUMNS
from bayesproxy.errors import BayesproxyError

TARGET = "target"
HERE = __name__  # workers import this module by name to build the forecaster


def make_table(n: int = 24, *, seed: int = 0, noise: float = 0.02) -> xr.Dataset:
    """A small table in the BenchmarkTable layout: target linear in log10 FLOPs."""
    rng = np.random.default_rng(seed)
    logc = np.linspace(20.0, 24.0, n)
    target = 0.1 + 0.1 * (logc - 20.0) + rng.normal(0, noise, n)
    proxy = 0.3 + 0.05 * (logc - 20.0) + rng.normal(0, noise, n)
    score = np.stack([proxy, target], axis=1)[:, :, None]
    units = [f"m{i:02d}" for i in range(n)]
    families = np.array(["a", "b", "c"])[np.arange(n) % 3]
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
            "family": ("unit", families),
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


class LinearForecaster:
    """Gaussian linear regression of the target on log10 FLOPs (plug-in predictive)."""

    name = "test-linear"

    def __init__(self, *, target: str, fail_on: str | None = None, samples: bool = True):
        self.target = target
        self.fail_on = fail_on
        self.samples = samples

    def _xy(self, table):
        ds = getattr(table, "dataset", table)
        x = np.log10(ds["flops"].values)
        y = ds["score"].sel(task=self.target).mean("replicate").values
        return x, y, ds["unit"].values.astype(str)

    def fit(self, table, **kwargs):
        x, y, units = self._xy(table)
        if self.fail_on is not None and self.fail_on in units:
            raise RuntimeError(f"refusing to fit with {self.fail_on}")
        ok = np.isfinite(y)
        self.coef_ = np.polyfit(x[ok], y[ok], 1)
        self.sigma_ = float(np.std(y[ok] - np.polyval(self.coef_, x[ok]), ddof=2))
        self.fit_kwargs_ = kwargs
        return self

    def forecast(self, table=None, *, prob=0.9, threshold=None):
        x, y, units = self._xy(table)
        assert np.all(np.isnan(y)), "the harness must hide the target from forecasters"
        mean = np.polyval(self.coef_, x)
        return pd.DataFrame(
            {
                "unit": units,
                "model": units,
                "step": np.nan,
                "mean": mean,
                "median": mean,
                "lower": np.nan,
                "upper": np.nan,
                "p_above": np.nan,
                "distance": 0.0,
                "extrapolation": False,
            }
        )

    def predictive_samples(self, table=None, *, n_samples=1000, random_seed=None):
        if not self.samples:
            return None
        x, _, units = self._xy(table)
        rng = np.random.default_rng(random_seed)
        mean = np.polyval(self.coef_, x)
        draws = mean[:, None] + rng.normal(0, self.sigma_, (len(units), n_samples))
        # reversed unit order: the harness must align by label, not position
        return xr.DataArray(draws, dims=("unit", "sample"), coords={"unit": units})[::-1]

    def log_predictive_density(self, table):
        x, y, units = self._xy(table)
        lpd = stats.norm.logpdf(y, np.polyval(self.coef_, x), self.sigma_)
        return xr.DataArray(lpd, dims="unit", coords={"unit": units})


SPEC = MethodSpec(f"{HERE}:LinearForecaster", label="linear")


@pytest.fixture(scope="module")
def table():
    from bayesproxy.table import BenchmarkTable

    return BenchmarkTable(make_table())


def test_mask_target_hides_only_the_target_and_copies(table):
    masked = mask_target(table, TARGET)
    assert type(masked) is type(table)
    assert masked.dataset["score"].sel(task=TARGET).isnull().all()
    np.testing.assert_array_equal(
        masked.dataset["score"].sel(task="proxy").values,
        table.dataset["score"].sel(task="proxy").values,
    )
    assert table.dataset["score"].sel(task=TARGET).notnull().all()  # caller's table untouched


def test_serial_backtest_scores_match_hand_computation(table):
    result = backtest(
        table,
        target=TARGET,
        methods=[SPEC],
        splits=["compute:1e23"],
        executor="serial",
        n_samples=400,
        progress=False,
    )
    assert isinstance(result, BacktestResult)
    assert list(result.results.columns) == list(RESULT_COLUMNS)
    assert result.errors.empty
    preds = result.predictions
    flops = table.dataset["flops"].to_series()
    assert set(preds["unit"]) == set(flops.index[flops > 1e23])
    # recompute MAE from the predictions frame by hand
    mae = np.mean(np.abs(preds["mean"] - preds["actual"]))
    got = result.results.set_index("metric")["value"]
    assert got["mae"] == pytest.approx(mae)
    assert np.isfinite(got["crps"]) and got["crps"] > 0
    assert np.isfinite(got["elpd"])
    assert 0 <= got["coverage_90"] <= 1 and got["width_90"] > got["width_50"] > 0
    # a correct model of a linear truth ranks held-out units well
    assert got["spearman"] > 0.5


def test_family_split_makes_one_fold_per_family_and_summary_weights(table):
    result = backtest(
        table,
        target=TARGET,
        methods=[SPEC],
        splits=["family"],
        executor="serial",
        n_samples=200,
        progress=False,
    )
    folds = result.results.loc[result.results["metric"] == "mae", "fold"]
    assert sorted(folds) == ["a", "b", "c"]
    summary = result.summary()
    rows = result.results[result.results["metric"] == "mae"]
    expected = np.average(rows["value"], weights=rows["n_test"])
    assert summary.loc[0, "mae"] == pytest.approx(expected)
    assert summary.loc[0, "elpd"] == pytest.approx(
        result.results.loc[result.results["metric"] == "elpd", "value"].sum()
    )


def test_method_without_uncertainty_gets_nan_intervals_and_point_crps(table):
    spec = MethodSpec(f"{HERE}:LinearForecaster", options={"samples": False}, label="point")
    result = backtest(
        table,
        target=TARGET,
        methods=[spec],
        splits=["compute:1e23"],
        executor="serial",
        progress=False,
    )
    got = result.results.set_index("metric")["value"]
    assert np.isnan(got["coverage_90"]) and np.isnan(got["width_50"])
    assert got["crps"] == pytest.approx(got["mae"])


def test_failing_fold_becomes_an_error_row_not_a_gap(table):
    spec = MethodSpec(f"{HERE}:LinearForecaster", options={"fail_on": "m00"}, label="picky")
    result = backtest(
        table,
        target=TARGET,
        methods=[spec, SPEC],
        splits=["family"],
        executor="serial",
        n_samples=100,
        progress=False,
    )
    errors = result.errors
    # m00 is in family "a": only folds that train on it (held-out "b" and "c") fail
    assert sorted(errors["fold"]) == ["b", "c"]
    assert errors["error"].str.contains("refusing to fit with m00").all()
    assert set(errors["method"]) == {"picky"}
    ok = result.results[
        (result.results["method"] == "linear") & (result.results["metric"] == "mae")
    ]
    assert len(ok) == 3


def test_any_executor_gives_the_serial_answer(table):
    kwargs = dict(
        target=TARGET,
        methods=[SPEC],
        splits=["family", "compute:1e23"],
        n_samples=100,
        progress=False,
    )
    serial = backtest(table, executor="serial", **kwargs)
    with ThreadPoolExecutor(2) as pool:
        threaded = backtest(table, executor=pool, **kwargs)
    pd.testing.assert_frame_equal(
        serial.results.drop(columns="value")[serial.results["metric"] != "fit_seconds"],
        threaded.results.drop(columns="value")[threaded.results["metric"] != "fit_seconds"],
    )
    keep = serial.results["metric"] != "fit_seconds"
    np.testing.assert_allclose(
        serial.results.loc[keep, "value"], threaded.results.loc[keep, "value"]
    )


def test_default_process_pool_runs_jobs_in_other_processes(table):
    result = backtest(
        table, target=TARGET, methods=[SPEC], splits=["family"], n_samples=50, progress=False
    )
    assert result.errors.empty
    assert (result.results["metric"] == "mae").sum() == 3


def test_dask_local_cluster_executor(table):
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        result = backtest(
            table,
            target=TARGET,
            methods=[SPEC],
            splits=["family"],
            executor=client.get_executor(),
            n_samples=50,
            progress=False,
        )
    assert result.errors.empty
    assert sorted(result.results.loc[result.results["metric"] == "mae", "fold"]) == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"methods": []}, "no methods"),
        ({"methods": ["no-such-method"]}, "unknown method"),
        ({"methods": [SPEC, SPEC]}, "more than once"),
        ({"splits": []}, "no splits"),
        ({"splits": ["bogus:3"]}, "cannot parse split"),
        ({"prob_levels": (0.5, 1.2)}, "prob_levels"),
        ({"target": "nope"}, "unknown target"),
        ({"executor": "threads"}, "executor must be"),
    ],
)
def test_bad_arguments_raise_bayesproxy_errors(table, kwargs, match):
    args = dict(target=TARGET, methods=[SPEC], splits=["family"], executor="serial", progress=False)
    args.update(kwargs)
    with pytest.raises(BayesproxyError, match=match):
        backtest(table, **args)


def test_comparison_plot_has_a_bar_per_method_and_split(table):
    import matplotlib.pyplot as plt

    from bayesproxy.backtest.plotting import plot_backtest_comparison

    point = MethodSpec(f"{HERE}:LinearForecaster", options={"samples": False}, label="point")
    result = backtest(
        table,
        target=TARGET,
        methods=[SPEC, point],
        splits=["family", "compute:1e23"],
        executor="serial",
        n_samples=100,
        progress=False,
    )
    ax = plot_backtest_comparison(result, metric="coverage_90")
    assert "coverage_90" in ax.get_title()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["family", "compute:1e+23"]
    assert len(ax.patches) == 4  # 2 methods x 2 splits
    labels = [t.get_text() for t in ax.texts]
    assert labels.count("n/a") == 2  # the point method has no intervals: said, not drawn as 0
    plt.close(ax.figure)
    with pytest.raises(BayesproxyError, match="not in the backtest results"):
        plot_backtest_comparison(result, metric="brier")


class WarningForecaster(LinearForecaster):
    """Warns while fitting, as a sampler does when chains disagree."""

    def fit(self, table, **kwargs):
        import warnings

        warnings.warn("chains disagree\nHint: sample longer", UserWarning, stacklevel=2)
        return super().fit(table, **kwargs)


def test_fit_warnings_are_kept_as_rows_and_left_out_of_scores(table):
    spec = MethodSpec(f"{HERE}:WarningForecaster", label="warny")
    result = backtest(
        table,
        target=TARGET,
        methods=[spec],
        splits=["compute:1e23"],
        executor="serial",
        n_samples=100,
        progress=False,
    )
    assert result.warnings["error"].tolist() == ["UserWarning: chains disagree"]
    assert "warning" not in result.summary().columns
    assert np.isfinite(result.summary().loc[0, "mae"])


def test_pooled_metrics_use_every_held_out_unit(table):
    result = backtest(
        table,
        target=TARGET,
        methods=[SPEC],
        splits=["unit"],
        executor="serial",
        n_samples=50,
        progress=False,
    )
    per_fold = result.results[result.results["metric"] == "spearman"]["value"]
    assert per_fold.isna().all()  # one unit per fold: no rank correlation within a fold
    pooled = result.pooled().iloc[0]
    preds = result.predictions
    assert pooled["n_units"] == len(preds) == 24
    assert pooled["spearman"] == pytest.approx(stats.spearmanr(preds["mean"], preds["actual"])[0])
    assert pooled["mae"] == pytest.approx(np.mean(np.abs(preds["mean"] - preds["actual"])))
