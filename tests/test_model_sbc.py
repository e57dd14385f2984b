"""Simulation-based calibration of the proxy model: the simulator, the compile-once runner
and the verdict.

The simulator is checked against the model's own log density through the score identity
(the expected gradient of a correctly normalised log-likelihood, over data drawn from it, is
zero at the parameters that drew them), which fails if the simulator and the model disagree
on any term; a short real SBC run checks the plumbing.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
import pytest

from bayesproxy import datasets
from bayesproxy.model.build import proxy_grid
from bayesproxy.model.calibration import (
    DEFAULT_TABLE,
    CalibrationError,
    ProxySBC,
    plot_sbc,
    run_sbc,
    sbc_verdict,
)
from bayesproxy.model.design import build_design

N_SIM = 8


@pytest.fixture(scope="module")
def design():
    # missing cells (some with a single replicate, some absent) make the mask matter
    table = datasets.simulate(**{**DEFAULT_TABLE, "missing": 0.15, "random_seed": 5}).table
    return build_design(table, target="target")


@pytest.fixture(scope="module")
def sbc(design):
    return ProxySBC(
        design,
        num_simulations=N_SIM,
        draws=100,
        tune=150,
        chains=2,
        thin=2,
        seed=3,
    )


def test_simulated_data_have_the_template_shapes_and_mask(sbc):
    grid = proxy_grid(sbc.design)
    observed = grid["observed"] > 0
    assert (~observed).any() and (observed & (grid["count"] == 1)).any()  # the mask matters
    for i, draw in enumerate(sbc.prior_draws(3, seed=1)):
        data = sbc.simulate(seed=100 + i, **draw)
        assert set(data) == {"proxy_mean", "proxy_sum_squares", "target_successes"}
        assert data["proxy_mean"].shape == grid["mean"].shape
        assert data["proxy_sum_squares"].shape == grid["mean"].shape
        assert np.all(data["proxy_mean"][~observed] == 0.0)
        assert np.all(np.isfinite(data["proxy_mean"]))
        multi = grid["half_dof"] > 0
        assert np.all(data["proxy_sum_squares"][~multi] == 0.0)
        assert np.all(data["proxy_sum_squares"][multi] > 0.0)
        k = data["target_successes"]
        assert k.dtype.kind == "i" and k.shape == sbc.design.target_unit.shape
        assert np.all((k >= 0) & (k <= sbc.design.target_n_items))
        # the data round-trip through a design exactly as a fit would read them
        again = proxy_grid(sbc.design_with(data))
        np.testing.assert_array_equal(again["mean"], data["proxy_mean"])
        np.testing.assert_array_equal(again["sum_squares"], data["proxy_sum_squares"])


def _likelihood_score(model):
    """Gradient, over the (transformed) free values, of every data term of the model."""
    terms = model.logp(vars=[*model.observed_RVs, *model.potentials])
    grads = pt.grad(terms, model.value_vars)
    return pytensor.function(model.value_vars, grads, mode="FAST_COMPILE", on_unused_input="ignore")


def _value_point(model, draw):
    """Free parameters of one draw on the sampler's (transformed) scale."""
    point = []
    for rv, value in zip(model.free_RVs, model.value_vars, strict=True):
        x = np.asarray(draw[rv.name], dtype=float)
        transform = model.rvs_to_transforms.get(rv)
        if transform is not None:
            x = transform.forward(pt.as_tensor(x), *rv.owner.inputs).eval()
        point.append(np.asarray(x, dtype=value.dtype))
    return point


def _score_z(sbc, score, draw, simulate_with, n=200):
    """Largest |mean / standard error| over all score components across n simulations."""
    point = _value_point(sbc.model, draw)
    named = sbc.named_quantities(simulate_with)
    rows = []
    try:
        for seed in range(n):
            data = sbc.simulate_from(named, seed=10_000 + seed)
            with sbc.model:
                pm.set_data(data)
            rows.append(np.concatenate([np.ravel(g) for g in score(*point)]))
    finally:
        with sbc.model:
            pm.set_data(sbc._template)
    s = np.array(rows)
    sd = s.std(axis=0, ddof=1)
    keep = sd > 1e-9  # components no data term depends on
    return float(np.max(np.abs(s[:, keep].mean(axis=0)) / (sd[keep] / np.sqrt(n))))


@pytest.mark.parametrize("likelihood", ["binomial", "beta"])
def test_simulator_draws_from_the_models_own_likelihood(sbc, design, likelihood):
    if likelihood == "beta":  # no item counts: Beta likelihood with a concentration
        no_counts = replace(design, target_n_items=np.full(design.target_unit.shape, np.nan))
        sbc = ProxySBC(no_counts, num_simulations=2)
        data = sbc.simulate(seed=0, **sbc.prior_draws(1)[0])
        assert set(data) == {"proxy_mean", "proxy_sum_squares", "target_score"}
        y = data["target_score"]
        assert y.shape == design.target_unit.shape and np.all((y > 0) & (y < 1))
    score = _likelihood_score(sbc.model)
    draw = sbc.prior_draws(1, seed=2)[0]
    # data drawn at the point: every expected score component is zero (|z| ~ N(0, 1))
    assert _score_z(sbc, score, draw, draw) < 4.5
    # data drawn elsewhere (proxy intercepts shifted by 0.3 SD): the identity breaks
    shifted = {**draw, "proxy_intercept": draw["proxy_intercept"] + 0.3}
    assert _score_z(sbc, score, draw, shifted) > 8.0


def test_sbc_run_compiles_once_and_ranks_every_quantity(sbc):
    sbc.run_simulations()
    result = sbc.result(alpha=0.05)
    reused = result.fits["compiled_sampler_reused"].tolist()
    assert len(reused) == N_SIM
    assert all(reused[1:]) and reused.count(False) <= 1  # one compilation for all fits
    ranks = sbc.simulations["prior_sbc"].to_dataset()
    L = sbc.n_rank_draws
    assert L == 2 * (100 // 2)
    expected = {*sbc.free_names, "capability", "target_p", "alignment", "stability", "noise_sd"}
    assert expected <= set(ranks.data_vars)
    for name in ranks.data_vars:
        r = ranks[name].values
        assert r.shape[:2] == (1, N_SIM)
        assert np.issubdtype(r.dtype, np.integer)
        assert r.min() >= 0 and r.max() <= L, name
    pit = result.pit["prior_sbc"].to_dataset()
    assert set(pit.data_vars) == set(ranks.data_vars)
    assert "unit" in pit["capability"].dims and "proxy" in pit["loading"].dims
    for name in pit.data_vars:
        assert float(pit[name].min()) > 0.0 and float(pit[name].max()) < 1.0
    verdict = result.verdict
    assert set(verdict["variable"]) == set(ranks.data_vars)
    assert (
        verdict[["p_min", "p_variable", "p_adjusted"]].apply(lambda c: c.between(0, 1)).all().all()
    )
    fits = result.fits
    assert {"divergences", "min_ess_bulk", "max_rhat", "capability_extreme_share"} <= set(fits)
    shares = fits[["extreme_rank_share", "capability_extreme_share"]].to_numpy()
    assert np.all((shares >= 0) & (shares <= 1))
    fig = plot_sbc(result, var_names=["alpha", "beta", "loading", "capability"], col_wrap=2)
    assert "calibration" in fig.get_suptitle()
    assert all(ax.get_xlabel() == "PIT" for ax in fig.axes if ax.has_data())


def test_verdict_fails_non_uniform_ranks_and_passes_uniform_ones():
    import xarray as xr

    rng = np.random.default_rng(1)
    u = rng.uniform(size=(1, 200))
    pit = xr.DataTree.from_dict(
        {
            "prior_sbc": xr.Dataset(
                {
                    "uniform": (("chain", "draw"), u),
                    # too-narrow posteriors: truths pile up in the tails
                    "overconfident": (("chain", "draw"), np.where(u < 0.5, u**2, 1 - (1 - u) ** 2)),
                    "vector": (("chain", "draw", "proxy"), rng.uniform(size=(1, 200, 4))),
                },
                coords={"proxy": list("abcd")},
            )
        }
    )
    verdict, elements = sbc_verdict(pit)
    passed = verdict.set_index("variable")["passed"]
    assert passed["uniform"] and passed["vector"] and not passed["overconfident"]
    assert len(elements) == 1 + 1 + 4
    assert verdict.set_index("variable").loc["overconfident", "tail_share"] > 0.15


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_simulations": 1}, "num_simulations"),
        ({"num_simulations": 4, "draws": 10, "thin": 20}, "thin"),
        ({"num_simulations": 4, "chains": 0}, "chains"),
    ],
)
def test_bad_settings_raise_a_clear_error(kwargs, message):
    with pytest.raises(CalibrationError, match=message) as info:
        run_sbc(**kwargs)
    assert "Hint:" in str(info.value)
