"""Every plot and the report from a REAL small fit of the Bayesian proxy model (MCMC)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import re

import matplotlib.pyplot as plt
import numpy as np
import pytest

from bayesproxy import plots
from bayesproxy.plots import PlotInputError


@pytest.fixture(scope="session")
def small_fit(request):
    """The shared fitted forecaster when the suite provides one, else a small fit of our own.

    Returns ``(forecaster, table)``.
    """
    try:
        forecaster = request.getfixturevalue("fitted_forecaster")
        table = request.getfixturevalue("simulated_table")
        table = getattr(table, "table", table)
    except pytest.FixtureLookupError:
        import warnings

        from bayesproxy import ProxyForecaster, datasets
        from bayesproxy.errors import ConvergenceWarning

        table = datasets.simulate(
            n_families=2,
            n_runs_per_family=1,
            n_checkpoints=5,
            n_proxies=4,
            n_replicates=1,
            holdout_share=0.3,
            random_seed=3,
        ).table
        with warnings.catch_warnings():
            # a short run for speed: the convergence gate may warn, the plots must not care
            warnings.simplefilter("ignore", ConvergenceWarning)
            forecaster = ProxyForecaster(target=table.target).fit(
                table, draws=100, tune=150, chains=2, random_seed=1, progressbar=False
            )
    return forecaster, table


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_weight_plots_from_fit(small_fit):
    forecaster, _ = small_fit
    proxies = [str(p) for p in forecaster.datatree.posterior["proxy"].values]
    pc = plots.plot_weights(forecaster, ci_prob=0.9)
    fig = pc.get_viz("figure")
    fig.canvas.draw()
    labels = {t.get_text() for ax in fig.axes for t in ax.texts}
    assert set(proxies) <= labels and {"alignment", "stability", "weight"} <= labels
    fig = plots.plot_alignment_stability(forecaster, ci_prob=0.9)
    assert {t.get_text() for t in fig.axes[0].texts} == set(proxies)


@pytest.mark.parametrize("with_table", [True, False])
def test_fan_from_fit_matches_forecasts(small_fit, with_table):
    forecaster, table = small_fit
    data = plots.fan_data(
        forecaster, table=table if with_table else None, x="flops", ci_prob=0.9, n_samples=2000
    )
    forecasts = forecaster.forecast(prob=0.9).set_index("unit")
    assert len(forecasts) > 0
    rows = data.set_index("unit").loc[forecasts.index]
    # the fan's units to forecast are the forecaster's own predictions (Monte Carlo error)
    np.testing.assert_allclose(rows["median"], forecasts["median"], atol=0.05)
    assert rows["extrapolation"].tolist() == forecasts["extrapolation"].astype(bool).tolist()
    assert rows["observed"].isna().all()  # their target is missing
    if with_table:  # observed target scores come from the table (a fit may store counts)
        assert data["observed"].notna().sum() == int(table.target_observed.sum())
    assert ((data["lower"] <= data["median"]) & (data["median"] <= data["upper"])).all()
    assert (data["lower"] >= data.attrs["chance"] - 1e-9).all()
    fig = plots.plot_forecast_fan(forecaster, table=table if with_table else None, ci_prob=0.9)
    fig.canvas.draw()
    assert fig.axes[0].get_xlabel() == "training compute (log10 FLOPs)"


@pytest.mark.parametrize("kind", ["rank", "trace", "energy"])
def test_convergence_plots_from_fit(small_fit, kind):
    forecaster, _ = small_fit
    pc = plots.plot_convergence(forecaster, kind=kind, ci_prob=0.9)
    fig = pc.get_viz("figure")
    fig.canvas.draw()
    assert fig._suptitle is not None and fig._suptitle.get_text()


@pytest.mark.parametrize("plot", ["plot_ppc", "plot_loo_pit"])
def test_predictive_checks_from_fit(small_fit, plot):
    forecaster, _ = small_fit
    dt = forecaster.datatree
    needs = {
        "plot_ppc": ("posterior_predictive", "observed_data"),
        "plot_loo_pit": ("posterior_predictive", "observed_data", "log_likelihood"),
    }[plot]
    missing = [group for group in needs if group not in dt.children]
    if not missing:
        getattr(plots, plot)(forecaster).get_viz("figure").canvas.draw()
    else:  # the fit does not store them: a clear error, not a traceback from ArviZ
        with pytest.raises(PlotInputError, match=missing[0]):
            getattr(plots, plot)(forecaster)


def test_report_from_fit(small_fit, tmp_path):
    from bayesproxy.report import build_report

    forecaster, table = small_fit
    page = build_report(forecaster, path=tmp_path / "r.html", table=table).read_text()
    n_forecast = len(forecaster.forecast())
    # the forecast table lists every unit to forecast, each with its interval
    for unit in forecaster.forecast()["unit"]:
        assert f"<td>{unit}</td>" in page
    assert n_forecast > 0
    assert len(re.findall(r'<img src="data:image/png;base64,', page)) >= 4
    verdict = "Converged:" if forecaster.converged else "NOT CONVERGED"
    assert verdict in page
    assert "units to forecast (target missing)" in page


def test_report_command_on_saved_fit(small_fit, tmp_path):
    from typer.testing import CliRunner

    import bayesproxy.cli.report  # noqa: F401  (registers the command)
    from bayesproxy.cli._app import app

    forecaster, _ = small_fit
    fit_path = forecaster.save(tmp_path / "fit.nc")
    out = tmp_path / "report.md"
    result = CliRunner().invoke(app, ["report", str(fit_path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "## Forecasts" in text
    images = re.findall(r"\]\((report_files/[^)]+\.png)\)", text)
    assert images and all((tmp_path / i).is_file() for i in images)


def test_relevance_heatmap_of_the_proxy_task_method():
    from bayesproxy import datasets
    from bayesproxy.methods import get_method

    table = datasets.simulate(
        n_families=2, n_runs_per_family=2, n_checkpoints=4, n_proxies=5, random_seed=2
    ).table
    method = get_method("proxy-selection", target=table.target).fit(table)
    expected = method.relevance_table()
    fig = plots.plot_relevance_heatmap(method, sort_by="spearman")
    fig.canvas.draw()
    ax = fig.axes[0]
    shown = [t.get_text() for t in ax.get_xticklabels()]
    assert shown == [c for c in ("pearson", "spearman", "kendall", "robustness") if c in expected]
    rows = [t.get_text() for t in ax.get_yticklabels()]
    assert rows == expected.sort_values("spearman", ascending=False).index.astype(str).tolist()
