"""Every plot renders headless from ArviZ's testing DataTrees and from a bayesproxy-shaped
DataTree; bad input raises a bayesproxy error naming what is missing."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import arviz_stats  # noqa: F401  (registers the .azstats accessor testing.datatree uses)
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from arviz_base import from_dict, testing

from bayesproxy import plots
from bayesproxy.errors import BayesproxyError
from bayesproxy.plots import PlotInputError

PROXIES = ["arc", "hellaswag", "mmlu", "piqa"]
UNITS = [f"{run}@{step}" for run in ("r1", "r2") for step in (1000, 2000, 4000, 8000, 16000)]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def arviz_dt():
    return testing.datatree()


@pytest.fixture(scope="module")
def proxy_dt():
    return make_proxy_datatree()


def make_proxy_datatree():
    """A DataTree with the documented bayesproxy names (ARCHITECTURE.md)."""
    rng = np.random.default_rng(1)
    chains, draws, k, n = 2, 60, len(PROXIES), len(UNITS)
    alignment = rng.beta(np.linspace(2, 8, k), 3, (chains, draws, k))
    stability = rng.beta(np.linspace(6, 2, k), 2, (chains, draws, k))
    weight = alignment * stability
    steps = np.tile([1000.0, 2000.0, 4000.0, 8000.0, 16000.0], 2)
    logit = -3 + 0.8 * np.log2(steps / 1000)[None, None, :] + rng.normal(0, 0.3, (chains, draws, n))
    target_p = 0.25 + 0.75 / (1 + np.exp(-logit))
    observed = target_p.mean(axis=(0, 1))[:7] + rng.normal(0, 0.02, 7)
    pp = np.clip(target_p[..., :7] + rng.normal(0, 0.03, (chains, draws, 7)), 0, 1)
    loglik = -0.5 * ((pp - observed) / 0.03) ** 2
    dt = from_dict(
        {
            "posterior": {
                "alignment": alignment,
                "stability": stability,
                "weight": weight,
                "target_p": target_p,
            },
            "posterior_predictive": {"target_obs": pp},
            "observed_data": {"target_obs": observed},
            "log_likelihood": {"target_obs": loglik},
            "sample_stats": {
                "energy": rng.normal(50, 5, (chains, draws)),
                "diverging": np.zeros((chains, draws), bool),
            },
        },
        dims={
            "alignment": ["proxy"],
            "stability": ["proxy"],
            "weight": ["proxy"],
            "target_p": ["unit"],
            "target_obs": ["unit_obs"],
        },
        coords={"proxy": PROXIES, "unit": UNITS, "unit_obs": UNITS[:7]},
    )
    posterior = (
        dt["posterior"]
        .to_dataset()
        .assign_coords(
            run=("unit", [u.split("@")[0] for u in UNITS]),
            step=("unit", steps),
            flops=("unit", steps * 6e18),
            extrapolation=("unit", [False] * 4 + [True] + [False] * 4 + [True]),
        )
    )
    dt["posterior"] = posterior
    dt.attrs.update(target="gsm8k", target_chance=0.25)
    return dt


def _fig_checks(fig):
    """A rendered figure: has a title, and every visible axis with data has labels."""
    fig.canvas.draw()
    titles = [fig._suptitle.get_text() if fig._suptitle else ""] + [
        ax.get_title() for ax in fig.axes
    ]
    assert any(t.strip() for t in titles), "figure has no title"
    width, height = fig.canvas.get_width_height()
    assert width > 100 and height > 100
    return fig


def test_weights_forest_from_proxy_dt(proxy_dt, tmp_path):
    pc = plots.plot_weights(proxy_dt, ci_prob=0.8)
    fig = _fig_checks(pc.get_viz("figure"))
    assert "80%" in fig._suptitle.get_text()
    labelled = [ax for ax in fig.axes if ax.get_xlabel()]
    assert labelled, "forest plot has no x label"
    pc.savefig(tmp_path / "w.png")
    assert (tmp_path / "w.png").stat().st_size > 5000


def test_weights_forest_from_arviz_testing_dt(arviz_dt):
    pc = plots.plot_weights(arviz_dt, var_names=["mu", "tau", "theta"], ci_prob=0.9)
    _fig_checks(pc.get_viz("figure"))


def test_alignment_stability_scatter(proxy_dt):
    fig = _fig_checks(plots.plot_alignment_stability(proxy_dt, ci_prob=0.9))
    ax = fig.axes[0]
    assert "alignment" in ax.get_xlabel() and "stability" in ax.get_ylabel()
    texts = {t.get_text() for t in ax.texts}
    assert set(PROXIES) <= texts
    # error bars span the 90% interval of each proxy's alignment
    med = np.median(proxy_dt.posterior["alignment"].values.reshape(-1, len(PROXIES)), axis=0)
    offsets = ax.collections[-1].get_offsets()
    np.testing.assert_allclose(np.asarray(offsets)[:, 0], med, atol=1e-12)


def test_forecast_fan_from_datatree(proxy_dt):
    fig = _fig_checks(plots.plot_forecast_fan(proxy_dt, x="step", ci_prob=0.9))
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == ["run r1", "run r2"]
    ax = panels[0]
    assert "step" in ax.get_xlabel() and "score" in ax.get_ylabel()
    # chance floor and ceiling drawn as horizontal lines at 0.25 and 1.0
    hlines = {round(line.get_ydata()[0], 6) for line in ax.lines if len(set(line.get_ydata())) == 1}
    assert {0.25, 1.0} <= hlines
    legend_labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "extrapolated unit" in legend_labels and "observed" in legend_labels


def test_fan_data_numbers(proxy_dt):
    data = plots.fan_data(proxy_dt, x="flops", ci_prob=0.5)
    draws = proxy_dt.posterior["target_p"].values.reshape(-1, len(UNITS))
    np.testing.assert_allclose(data["median"], np.median(draws, axis=0))
    np.testing.assert_allclose(data["lower"], data["lower_50"])
    np.testing.assert_allclose(data["x"], np.log10(np.tile([1e3, 2e3, 4e3, 8e3, 16e3], 2) * 6e18))
    assert data["observed"].notna().sum() == 7
    assert data["extrapolation"].sum() == 2
    assert data.attrs["chance"] == 0.25


def test_fan_rejects_missing_axis(proxy_dt):
    bare = proxy_dt.copy()
    bare["posterior"] = bare["posterior"].to_dataset().drop_vars(["flops"])
    with pytest.raises(PlotInputError, match="x='step'"):
        plots.plot_forecast_fan(bare, x="flops")


def test_ppc_and_loo_pit(proxy_dt, arviz_dt):
    for dt in (proxy_dt, arviz_dt):
        _fig_checks(plots.plot_ppc(dt, num_samples=10).get_viz("figure"))
        fig = _fig_checks(plots.plot_loo_pit(dt, ci_prob=0.9).get_viz("figure"))
        assert any(ax.get_ylabel() for ax in fig.axes)


@pytest.mark.parametrize("kind", ["rank", "trace", "energy"])
def test_convergence_plots(proxy_dt, arviz_dt, kind):
    for dt in (proxy_dt, arviz_dt):
        names = None if dt is proxy_dt else ["mu", "tau"]
        fig = _fig_checks(plots.plot_convergence(dt, kind=kind, var_names=names).get_viz("figure"))
        assert any(ax.get_xlabel() for ax in fig.axes)


def test_relevance_heatmap():
    table = pd.DataFrame(
        {
            "task": ["arc", "mmlu", "piqa"],
            "pearson": [0.8, 0.2, -0.3],
            "spearman": [0.7, 0.1, -0.2],
            "kendall": [0.6, 0.05, -0.1],
            "robustness": [0.02, 0.10, 0.05],
        }
    )
    original = table.copy()
    fig = _fig_checks(plots.plot_relevance_heatmap(table, sort_by="pearson"))
    pd.testing.assert_frame_equal(table, original)  # the caller's frame is untouched
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["arc", "mmlu", "piqa"]
    assert "0.80" in {t.get_text() for t in ax.texts}

    class Method:
        def relevance_table(self):
            return table

    _fig_checks(plots.plot_relevance_heatmap(Method(), columns=["pearson", "kendall"]))


def test_errors_are_bayesproxy_errors(proxy_dt, arviz_dt):
    with pytest.raises(BayesproxyError, match="alignment"):
        plots.plot_weights(arviz_dt)
    with pytest.raises(PlotInputError, match="ci_prob"):
        plots.plot_weights(proxy_dt, ci_prob=90)
    with pytest.raises(PlotInputError, match="posterior_predictive"):
        plots.plot_ppc(proxy_dt.drop_nodes("posterior_predictive"))
    with pytest.raises(PlotInputError, match="log_likelihood"):
        plots.plot_loo_pit(proxy_dt.drop_nodes("log_likelihood"))
    with pytest.raises(PlotInputError, match="fitted forecaster"):
        plots.plot_alignment_stability(object())
    with pytest.raises(PlotInputError, match="kind="):
        plots.plot_convergence(proxy_dt, kind="autocorr")
    with pytest.raises(PlotInputError, match="relevance"):
        plots.plot_relevance_heatmap([1, 2, 3])
