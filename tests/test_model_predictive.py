"""The target's posterior predictive and log-likelihood in NumPy, and observed-score forecasts.

The NumPy log-likelihood is checked against ``pymc.compute_log_likelihood`` on real fits,
one per target likelihood (Binomial: the session fit; Beta: a small fit of a table without
item counts).
"""

from __future__ import annotations

import json
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import xarray as xr
from scipy import special, stats

from bayesproxy import datasets, plots
from bayesproxy.errors import ConvergenceWarning
from bayesproxy.methods.base import MethodInputError
from bayesproxy.model import ProxyForecaster
from bayesproxy.model.predictive import (
    PredictiveInputError,
    _Link,
    _log_likelihood,
    _posterior_predictive,
    add_predictive_groups,
    observed_score_draws,
    target_log_likelihood,
    target_posterior_predictive,
)
from bayesproxy.table import BenchmarkTable


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def binomial(fitted_forecaster, simulated_table):
    """The session fit (a Binomial target: the simulated table has item counts)."""
    return fitted_forecaster, simulated_table.table


@pytest.fixture(scope="module")
def beta():
    """A small fit of a table without target item counts: the target likelihood is Beta."""
    sim = datasets.simulate(
        n_families=2,
        n_runs_per_family=2,
        n_checkpoints=4,
        n_proxies=4,
        n_replicates=2,
        holdout_share=0.25,
        random_seed=4,
    )
    ds = sim.table.dataset.copy(deep=True)
    ds["n_items"].loc[{"task": sim.table.target}] = np.nan  # scores without item counts
    table = BenchmarkTable(ds)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fc = ProxyForecaster(target=sim.table.target).fit(
            table, draws=150, tune=200, chains=2, random_seed=2, progressbar=False
        )
    assert fc.datatree["design"].attrs["likelihood"] == "beta"
    return fc, table


@pytest.fixture(params=["binomial", "beta"])
def fit(request):
    return request.getfixturevalue(request.param)


def _true_q(dt: xr.DataTree) -> xr.DataArray:
    """Each target cell's true score per draw, by label selection (independent of the module)."""
    post = dt["posterior"].dataset
    design = dt["design"].dataset
    labels = design["unit"].values[design["target_unit"].values]
    cells = {"target_cell": np.arange(len(labels))}
    theta = post["capability"].sel(unit=xr.DataArray(labels, dims="target_cell", coords=cells))
    z = post["discrepancy_z"].sel(
        target_unit=xr.DataArray(labels, dims="target_cell", coords=cells)
    )
    lin = post["alpha"] + (theta * post["beta"]).sum("factor") + post["discrepancy_sd"] * z
    chance = float(design.attrs["target_chance"])
    return chance + (post["ceiling"] - chance) * special.expit(lin)


# ---------------------------------------------------------------- log-likelihood
def test_log_likelihood_equals_pymc(fit):
    import pymc as pm

    from bayesproxy.model.build import build_model
    from bayesproxy.model.design import build_design

    fc, table = fit
    dt = fc.datatree
    design = build_design(table, target=fc.target, proxies=json.loads(dt.attrs["proxies"]))
    model = build_model(design, priors=fc.priors, n_factors=fc.n_factors)
    expected = pm.compute_log_likelihood(
        dt, var_names=["target_obs"], model=model, extend_inferencedata=False, progressbar=False
    )["target_obs"]
    ours = target_log_likelihood(dt)["target_obs"]
    assert ours.dims == ("chain", "draw", "target_cell")
    assert ours.shape == expected.shape
    np.testing.assert_allclose(ours.values, expected.values, rtol=1e-8, atol=1e-8)
    # the likelihood the design group records is the one the model was built with
    assert dt["design"].attrs["likelihood"] == design.likelihood


def test_groups_are_added_with_observed_scale(fit):
    fc, _ = fit
    dt = fc.datatree
    before = set(dt.children)
    out = add_predictive_groups(dt, random_seed=0)
    assert {"posterior_predictive", "log_likelihood"} <= set(out.children)
    assert set(dt.children) == before  # the input is left alone
    assert out.attrs == dt.attrs
    obs = out["observed_data"]["target_obs"]
    assert obs.dims == ("target_cell",)
    for group in ("posterior_predictive", "log_likelihood"):
        da = out[group]["target_obs"]
        assert da.dims == ("chain", "draw", "target_cell")
        np.testing.assert_array_equal(da["target_cell"].values, obs["target_cell"].values)
        assert np.isfinite(da.values).all()
    # rebuilt from the design group exactly as the model saw it
    groups = {node.path: node.to_dataset(inherit=False) for node in dt.subtree}
    groups["/observed_data"] = groups["/observed_data"].drop_vars("target_obs")
    bare = xr.DataTree.from_dict(groups)
    rebuilt = add_predictive_groups(bare, random_seed=0)["observed_data"]["target_obs"]
    np.testing.assert_array_equal(rebuilt.values, obs.values)
    # same seed, same replicates; the default seed derives from the fit's
    again = add_predictive_groups(dt, random_seed=0)
    np.testing.assert_array_equal(
        again["posterior_predictive"]["target_obs"], out["posterior_predictive"]["target_obs"]
    )
    np.testing.assert_array_equal(
        add_predictive_groups(dt)["posterior_predictive"]["target_obs"],
        add_predictive_groups(dt)["posterior_predictive"]["target_obs"],
    )


def test_binomial_draws_support_mean_and_spread(binomial):
    fc, _ = binomial
    dt = fc.datatree
    pp = target_posterior_predictive(dt, rng=np.random.default_rng(1))["target_obs"]
    n = dt["design"]["target_n_items"].values
    assert np.issubdtype(pp.dtype, np.integer)
    assert (pp.values >= 0).all() and (pp.values <= n).all()
    q = _true_q(dt).transpose(*pp.dims).values
    k = pp.values.reshape(-1, pp.sizes["target_cell"])
    nq = (n * q).reshape(k.shape)
    s = k.shape[0]
    # mean: E[k] = E[n q]; spread: Var k = E[n q (1 - q)] + Var(n q) (sampling noise is there)
    se = k.std(axis=0) / np.sqrt(s)
    assert np.all(np.abs(k.mean(axis=0) - nq.mean(axis=0)) < 5 * se + 1e-9)
    expected_var = (nq * (1 - q.reshape(k.shape))).mean(axis=0) + nq.var(axis=0)
    ratio = k.var(axis=0) / expected_var
    assert 0.8 < np.median(ratio) < 1.2


def test_beta_draws_support_mean_and_spread(beta):
    fc, _ = beta
    dt = fc.datatree
    pp = target_posterior_predictive(dt, rng=np.random.default_rng(1))["target_obs"]
    y = pp.values.reshape(-1, pp.sizes["target_cell"])
    assert np.issubdtype(pp.dtype, np.floating)
    assert ((y > 0) & (y < 1)).all()
    q = _true_q(dt).transpose(*pp.dims).values.reshape(y.shape)
    kappa = dt["posterior"]["concentration"].values.reshape(-1, 1)
    se = y.std(axis=0) / np.sqrt(len(y))
    assert np.all(np.abs(y.mean(axis=0) - q.mean(axis=0)) < 5 * se)
    expected_var = (q * (1 - q) / (kappa + 1)).mean(axis=0) + q.var(axis=0)
    assert 0.8 < np.median(y.var(axis=0) / expected_var) < 1.2


def test_psis_loo_runs_on_the_groups(fit):
    import arviz_stats as azs

    fc, _ = fit
    with warnings.catch_warnings():
        # per-unit link discrepancies make a few observations influential (Pareto k > 0.7):
        # a diagnostic about the model, not a failure of the groups
        warnings.filterwarnings("ignore", message="Estimated shape parameter of Pareto")
        elpd = azs.loo(add_predictive_groups(fc.datatree, random_seed=0), pointwise=True)
    assert np.isfinite(elpd.elpd)
    assert np.isfinite(np.asarray(elpd.pareto_k)).all()


def test_missing_pieces_raise_clear_errors(binomial):
    fc, _ = binomial
    dt = fc.datatree
    with pytest.raises(PredictiveInputError, match="DataTree"):
        target_log_likelihood(dt["posterior"].dataset)
    no_design = xr.DataTree.from_dict({"posterior": dt["posterior"].dataset})
    with pytest.raises(PredictiveInputError, match="'design' group"):
        add_predictive_groups(no_design)
    old = xr.DataTree.from_dict(
        {
            "posterior": dt["posterior"].dataset,
            "design": dt["design"].dataset.drop_vars(["target_unit", "target_n_items"]),
        }
    )
    with pytest.raises(PredictiveInputError, match="target_unit") as info:
        add_predictive_groups(old)
    assert "refit" in str(info.value)
    no_alpha = xr.DataTree.from_dict(
        {"posterior": dt["posterior"].dataset.drop_vars("alpha"), "design": dt["design"].dataset}
    )
    with pytest.raises(PredictiveInputError, match="alpha"):
        target_log_likelihood(no_alpha)


def test_observed_score_draws_checks_inputs():
    rng = np.random.default_rng(0)
    q = np.full((2, 5), 0.4)
    with pytest.raises(PredictiveInputError, match="item count"):
        observed_score_draws(q, likelihood="binomial", n_items=np.array([10.0, np.nan]), rng=rng)
    with pytest.raises(PredictiveInputError, match="concentration"):
        observed_score_draws(q, likelihood="beta", rng=rng)
    with pytest.raises(PredictiveInputError, match="'binomial' or 'beta'"):
        observed_score_draws(q, likelihood="normal", rng=rng)
    nan_row = observed_score_draws(
        np.vstack([q[:1], np.full((1, 5), np.nan)]),
        likelihood="binomial",
        n_items=np.array([10.0, 10.0]),
        rng=rng,
    )
    assert np.isfinite(nan_row[0]).all() and np.isnan(nan_row[1]).all()


# ---------------------------------------------------------------- plots and report
@pytest.mark.parametrize("plot", ["plot_ppc", "plot_loo_pit"])
def test_checks_plot_on_a_real_fit(fit, plot):
    fc, _ = fit
    pc = getattr(plots, plot)(add_predictive_groups(fc.datatree, random_seed=0))
    fig = pc.get_viz("figure")
    fig.canvas.draw()
    assert fig.axes


def test_report_shows_the_checks_of_a_fit(binomial, tmp_path):
    from bayesproxy.report.content import gather

    fc, table = binomial
    content = gather(fc, table=table, ci_prob=0.9)
    figures = {f.key: f for f in content.figures}
    for key in ("ppc", "loo_pit"):
        assert figures[key].png is not None, figures[key].note


# ---------------------------------------------------------------- forecasts
def test_observed_forecasts_are_wider_than_true_ones(fit):
    fc, _ = fit
    chance = float(fc.datatree["design"].attrs["target_chance"])
    true = fc.forecast(prob=0.9, kind="true")
    observed = fc.forecast(prob=0.9)
    assert len(true) > 0
    assert (true["lower"] >= chance - 1e-12).all() and (true["upper"] <= 1.0).all()
    assert (observed["lower"] >= 0.0).all() and (observed["upper"] <= 1.0).all()
    width_true = true["upper"] - true["lower"]
    width_obs = observed["upper"] - observed["lower"]
    # per unit, the two widths come from different Monte Carlo draws (1,000 each: ~0.006
    # standard error on a 90% width here) and the Binomial noise adds only ~0.01, so a unit
    # may come out a little narrower (seen: 0.198 against 0.209 on a fresh installation);
    # on average the observed intervals must be wider
    assert (width_obs >= width_true - 0.03).all() and width_obs.mean() > width_true.mean()
    # the observation noise is centred on the true score
    np.testing.assert_allclose(observed["mean"], true["mean"], atol=0.02)
    pd_default = fc.predictive_samples(n_samples=300, random_seed=5)
    pd_obs = fc.predictive_samples(n_samples=300, random_seed=5, kind="observed")
    np.testing.assert_array_equal(pd_default.values, pd_obs.values)
    pd_true = fc.predictive_samples(n_samples=300, random_seed=5, kind="true")
    assert (pd_true.values >= chance - 1e-12).all()
    assert pd_obs.values.std(axis=1).mean() > pd_true.values.std(axis=1).mean()


def test_binomial_observed_draws_use_the_new_tables_item_counts(binomial):
    fc, table = binomial
    n_train = float(np.nanmedian(fc.datatree["design"]["target_n_items"].values))
    draws = fc.predictive_samples(n_samples=200, random_seed=1)
    np.testing.assert_allclose(draws.values * n_train, np.round(draws.values * n_train))
    ds = table.dataset.copy(deep=True)
    target = fc.target
    ds["score"].loc[{"task": target}] = np.nan
    ds["n_items"].loc[{"task": target}] = np.nan
    units = ds["unit"].values
    ds["n_items"].loc[{"task": target, "unit": units[:3]}] = 7.0  # three units: 7 items
    new = BenchmarkTable(ds.assign_attrs(target=""))
    draws = fc.predictive_samples(new, n_samples=400, random_seed=1)
    few = draws.sel(unit=units[:3]).values
    np.testing.assert_allclose(few * 7, np.round(few * 7))
    rest = draws.sel(unit=units[3:]).values
    np.testing.assert_allclose(rest * n_train, np.round(rest * n_train))
    # 7 items: a much noisier score than n_train items
    true = fc.predictive_samples(new, n_samples=400, random_seed=1, kind="true")
    extra_few = few.var(axis=1) - true.sel(unit=units[:3]).values.var(axis=1)
    extra_rest = rest.var(axis=1) - true.sel(unit=units[3:]).values.var(axis=1)
    assert extra_few.mean() > 5 * extra_rest.mean()


def test_unknown_kind_is_rejected(binomial):
    fc, _ = binomial
    with pytest.raises(MethodInputError, match="kind must be"):
        fc.forecast(kind="noisy")
    with pytest.raises(MethodInputError, match="kind must be"):
        fc.predictive_samples(kind="expected")


def test_forecast_command_kind(binomial, tmp_path):
    import pandas as pd
    from typer.testing import CliRunner

    import bayesproxy.cli.model  # noqa: F401  (registers the command)
    from bayesproxy.cli._app import app

    fc, _ = binomial
    path = fc.save(tmp_path / "fit.nc")
    runner = CliRunner()
    frames = {}
    for kind in ("observed", "true"):
        out = tmp_path / f"{kind}.csv"
        result = runner.invoke(app, ["forecast", str(path), "--kind", kind, "--out", str(out)])
        assert result.exit_code == 0, result.output
        frames[kind] = pd.read_csv(out)
    expected = fc.forecast(kind="true").drop(columns=["unit"])
    np.testing.assert_allclose(frames["true"]["upper"], expected["upper"])
    wider = (frames["observed"]["upper"] - frames["observed"]["lower"]).mean()
    assert wider > (frames["true"]["upper"] - frames["true"]["lower"]).mean()
    result = runner.invoke(app, ["forecast", str(path), "--kind", "bogus", "--out", "x.csv"])
    assert result.exit_code == 2


def test_a_target_cell_of_zero_items_has_zero_successes():
    """A cell evaluated on no items: no successes, log-likelihood 0 (as SciPy's logpmf)."""
    rng = np.random.default_rng(0)
    q = rng.uniform(0.2, 0.9, size=(2, 50, 3))
    link = _Link(
        q=q,
        likelihood="binomial",
        n_items=np.array([0, 10, 400]),
        kappa=None,
        chain=np.arange(2),
        draw=np.arange(50),
        cells=np.arange(3),
    )
    pp = _posterior_predictive(link, rng=rng)["target_obs"].values
    assert pp.dtype == np.int64 and (pp[..., 0] == 0).all()
    assert ((pp[..., 1] >= 0) & (pp[..., 1] <= 10)).all() and pp[..., 2].max() > 10
    ll = _log_likelihood(link, np.array([0, 4, 200]))["target_obs"].values
    assert (ll[..., 0] == 0).all()
    np.testing.assert_allclose(
        ll[..., 1:], stats.binom.logpmf([4, 200], [10, 400], q[..., 1:]), rtol=1e-12
    )
