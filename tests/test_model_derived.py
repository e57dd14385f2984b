"""The NumPy-derived posterior quantities equal PyMC's own deterministics; compiled samplers
are reused across tables of one structure without changing results."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pymc as pm
import pytest

from bayesproxy.model.build import build_model
from bayesproxy.model.derived import DERIVED
from bayesproxy.model.design import build_design


@pytest.fixture(scope="module")
def model_and_fit(fitted_forecaster, simulated_table):
    fc = fitted_forecaster
    design = build_design(simulated_table.table, target=fc.target)
    model = build_model(design, priors=fc.priors, n_factors=fc.n_factors)
    return model, fc


def test_derived_quantities_match_pymc_deterministics(model_and_fit):
    model, fc = model_and_fit
    post = fc.datatree["posterior"].to_dataset().isel(draw=slice(0, 5))
    free = [rv.name for rv in model.free_RVs]
    expected = pm.compute_deterministics(
        post[free], model=model, progressbar=False, compile_kwargs={"mode": "FAST_COMPILE"}
    )
    names = [name for name in DERIVED if name in expected]
    assert {"capability", "alignment", "stability", "weight", "target_p", "noise_sd"} <= set(names)
    for name in names:
        got = post[name].transpose(*expected[name].dims)
        np.testing.assert_allclose(got.values, expected[name].values, rtol=1e-6, atol=1e-9)


def test_compiled_sampler_is_reused_with_identical_results(fitted_forecaster, simulated_table):
    import json
    import warnings

    from bayesproxy import ProxyForecaster
    from bayesproxy.errors import ConvergenceWarning

    first = fitted_forecaster
    settings = json.loads(first.datatree.attrs["sampler"])
    with warnings.catch_warnings():  # same small budget as the fixture's fit
        warnings.simplefilter("ignore", ConvergenceWarning)
        again = ProxyForecaster(target=first.target).fit(
            simulated_table.table,
            draws=settings["draws"],
            tune=settings["tune"],
            chains=settings["chains"],
            random_seed=settings["random_seed"],
        )
    assert json.loads(again.datatree.attrs["sampler"])["compiled_sampler_reused"]
    a = first.datatree["posterior"]["alignment"].values
    b = again.datatree["posterior"]["alignment"].values
    np.testing.assert_array_equal(a, b)


def test_family_and_run_intercepts_vary_and_sum_to_zero(model_and_fit, simulated_table):
    """Regression: the zero-sum constraint runs over families (and over the runs of each
    family), not over factors (which, with one factor, once forced every intercept to 0)."""
    from bayesproxy.model.build import hierarchy

    model, fc = model_and_fit
    h = hierarchy(build_design(simulated_table.table, target=fc.target))
    assert h.use_runs
    family = pm.draw(model["family_intercept"], draws=50, random_seed=1)  # (draws, level, D)
    assert family.std(axis=1).min() > 0.0
    np.testing.assert_allclose(family.sum(axis=1), 0.0, atol=1e-9)
    run = pm.draw(model["run_intercept"], draws=50, random_seed=1)
    assert run.std(axis=1).min() > 0.0
    for f in np.unique(h.run_family):
        np.testing.assert_allclose(run[:, h.run_family == f].sum(axis=1), 0.0, atol=1e-9)
    # family slopes deviate from their mean slope by zero-sum deviations: slope_mu is their mean
    slopes, slope_mu = pm.draw([model["family_slope"], model["slope_mu"]], draws=50, random_seed=1)
    assert slopes.std(axis=1).min() > 0.0
    np.testing.assert_allclose(slopes.mean(axis=1), slope_mu, rtol=1e-9, atol=1e-12)


def test_one_run_per_family_adds_no_run_level():
    """Regression: with one run per family the run effects are the family intercepts; an
    empty run-contrast variable once broke forecasting."""
    from bayesproxy import datasets
    from bayesproxy.model.build import hierarchy
    from bayesproxy.model.priors import resolve_priors

    table = datasets.simulate(n_families=2, n_runs_per_family=1, n_proxies=3).table
    design = build_design(table, target="target")
    assert not hierarchy(design).use_runs
    model = build_model(design, priors=resolve_priors(), n_factors=1)
    assert "run_effect_contrast" not in model.named_vars and "run" not in model.coords


def test_fit_without_missing_targets_forecasts_nothing_by_default():
    """A table whose every unit has its target: ``forecast()`` is an empty frame with the
    forecast columns (it once crashed), ``forecast(table)`` forecasts the table."""
    import warnings

    from bayesproxy import ProxyForecaster, datasets
    from bayesproxy.errors import ConvergenceWarning
    from bayesproxy.methods.base import FORECAST_COLUMNS

    table = datasets.simulate(n_families=2, n_runs_per_family=1, n_proxies=3).table
    assert table.target_observed.all()
    with warnings.catch_warnings():  # a tiny budget: the gate has its own tests
        warnings.simplefilter("ignore", ConvergenceWarning)
        fc = ProxyForecaster(target="target").fit(
            table, draws=50, tune=50, chains=2, random_seed=0, progressbar=False
        )
    empty = fc.forecast()
    assert empty.empty and list(empty.columns) == list(FORECAST_COLUMNS)
    assert len(fc.forecast(table)) == table.n_units


def test_runs_spanning_families_are_refused_at_the_door(simulated_table):
    from bayesproxy.model.build import hierarchy
    from bayesproxy.model.design import DesignError

    design = build_design(simulated_table.table, target="target")
    run = design.run.copy()
    first_of = {f: run[design.family == f][0] for f in np.unique(design.family)}
    a, b = list(first_of.values())[:2]
    run[run == b] = a  # one run label now spans two families
    with pytest.raises(DesignError, match="more than one family") as err:
        hierarchy(replace(design, run=run))
    assert repr(str(a)) in str(err.value)


def test_log_predictive_density_prefers_the_observed_scores(fitted_forecaster, simulated_table):
    """ELPD input: finite for units with a target, NaN otherwise, and higher at the real
    scores than at scores moved away from the forecasts."""
    from bayesproxy.backtest._tables import dataset_of, with_dataset

    table = simulated_table.table
    fc = fitted_forecaster
    lpd = fc.log_predictive_density(table)
    score = dataset_of(table)["score"].sel(task=fc.target)
    observed = np.isfinite(score.values).reshape(score.sizes["unit"], -1).any(axis=1)
    labels = np.asarray(score["unit"].values).astype(str)
    assert np.isfinite(lpd.reindex(labels[observed])).all()
    assert lpd.reindex(labels[~observed]).isna().all()
    ds = dataset_of(table).copy(deep=True)
    moved = ds["score"].sel(task=fc.target)
    ds["score"].loc[{"task": fc.target}] = np.clip(1.0 - moved, 0.0, 1.0)
    worse = fc.log_predictive_density(with_dataset(table, ds))
    assert lpd.sum() > worse.reindex(lpd.index).sum() + 10.0


def test_derived_quantities_match_pymc_with_two_factors(simulated_table):
    """The several-factor path (Dirichlet split of unit variance, sampled capability, free
    beta) computes the same named quantities in NumPy as PyMC's graph; checked on prior
    draws, so no sampling is needed."""
    import xarray as xr

    from bayesproxy.model.derived import add_derived
    from bayesproxy.model.priors import resolve_priors

    priors = resolve_priors()
    design = build_design(simulated_table.table, target="target")
    model = build_model(design, priors=priors, n_factors=2)
    names = [rv.name for rv in model.free_RVs] + ["capability"]
    values = pm.draw([model[name] for name in names], draws=3, random_seed=3)

    def dims(name: str, value: np.ndarray) -> tuple[str, ...]:
        # unlabelled vectors (e.g. the noise SDs' split) get ArviZ's default names
        own = model.named_vars_to_dims.get(name)
        return tuple(own) if own else tuple(f"{name}_dim_{i}" for i in range(value.ndim - 1))

    post = xr.Dataset(
        {
            name: (("chain", "draw", *dims(name, np.asarray(value))), np.asarray(value)[None])
            for name, value in zip(names, values, strict=True)
        },
        coords={dim: list(labels) for dim, labels in model.coords.items()},
    )
    free = names[:-1]
    expected = pm.compute_deterministics(
        post[free], model=model, progressbar=False, compile_kwargs={"mode": "FAST_COMPILE"}
    )
    got = add_derived(post, design, n_factors=2, priors=priors)
    compared = [name for name in DERIVED if name in expected]
    assert {"alpha", "capability", "loading", "alignment", "weight", "target_p"} <= set(compared)
    for name in compared:
        np.testing.assert_allclose(
            got[name].transpose(*expected[name].dims).values,
            expected[name].values,
            rtol=1e-6,
            atol=1e-9,
            err_msg=name,
        )
