"""The hand-written density equals PyMC's log density of the same model, and samples like it."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytensor.tensor as pt
import pytest

from bayesproxy.datasets import simulate
from bayesproxy.model.build import build_model
from bayesproxy.model.density import (
    _CHECK_ROWS,
    _FACTOR_BOUND,
    common_half_dof,
    logp_and_gradient,
    pack,
    supports,
)
from bayesproxy.model.design import build_design
from bayesproxy.model.native import jittered_start, support_point, to_constrained
from bayesproxy.model.priors import resolve_priors

#: the simulated table behind most variants
BASE_TABLE = {
    "n_families": 3,
    "n_runs_per_family": 2,
    "n_checkpoints": 4,
    "n_proxies": 6,
    "n_replicates": 3,
    "holdout_share": 0.25,
    "random_seed": 3,
}


def _simulated_design(**overrides):
    sim = simulate(**{**BASE_TABLE, **overrides})
    return build_design(sim.table, target=sim.table.target)


def _design(variant: str):
    if variant == "no replicates":
        # one replicate per cell: every noise SD non-centred, no sums of squares
        return _simulated_design(
            n_families=2,
            n_runs_per_family=1,
            n_checkpoints=5,
            n_proxies=3,
            n_replicates=1,
            random_seed=4,
        )
    design = _simulated_design()
    if variant == "no compute":
        design = replace(design, x=np.full_like(design.x, np.nan))
    elif variant == "some compute unknown":
        x = design.x.copy()
        x[::3] = np.nan
        design = replace(design, x=x)
    elif variant == "mixed replicates":
        # a proxy whose cells have 1, 2 and 3 replicates (half_dof 0, 0.5, 1); no stderrs
        n = design.cell_n.copy()
        n[::3], n[1::3] = 1.0, 2.0
        ss = np.where(n >= 2, design.cell_ss, 0.0)
        design = replace(design, cell_n=n, cell_ss=ss, cell_se2=np.zeros_like(design.cell_se2))
    elif variant == "missing cells":
        keep = np.ones(len(design.cell_unit), bool)
        keep[::4] = False
        design = replace(
            design,
            cell_unit=design.cell_unit[keep],
            cell_proxy=design.cell_proxy[keep],
            cell_mean=design.cell_mean[keep],
            cell_n=design.cell_n[keep],
            cell_ss=design.cell_ss[keep],
            cell_se2=design.cell_se2[keep],
        )
    return design


VARIANTS = [
    ("reference", float("nan")),
    ("reference", 0.9),  # a fixed ceiling
    ("no compute", float("nan")),
    ("some compute unknown", float("nan")),
    ("mixed replicates", float("nan")),
    ("missing cells", float("nan")),
    ("no replicates", float("nan")),
    ("distinct priors", float("nan")),  # no two prior constants equal: catches swapped slots
]

#: every prior the density reads, each set to a value no other one has
DISTINCT_PRIORS = {
    "component_sd": 0.41,
    "component_sd_shape": 2.3,
    "family_slope_spread": 0.27,
    "proxy_intercept_sd": 1.13,
    "loading_sd": 0.87,
    "unique_sd": 0.53,
    "noise_log_mu": -1.7,
    "noise_log_mu_sd": 0.91,
    "noise_log_sd": 0.47,
    "alpha_sd": 2.2,
    "beta_sd": 2.9,
    "ceiling_a": 7.5,
    "ceiling_b": 1.3,
    "discrepancy_sd": 0.61,
}


def _pymc_pair(design, priors):
    model = build_model(design, priors=priors, n_factors=1)
    packed = pack(design, model, priors=priors)
    # a few points only: the Python linker compiles in a second, numba would take many
    logp = model.compile_logp(mode="FAST_COMPILE")
    dlogp = model.compile_dlogp(mode="FAST_COMPILE")
    order = [v.name for v in model.value_vars]

    def point(x):
        return {
            name: x[start : start + int(np.prod(shape))].reshape(shape)
            for name, (start, shape) in packed.layout.items()
        }

    def pymc_gradient(x):
        flat = np.asarray(dlogp(point(x)))
        out = np.empty_like(x)
        at = 0
        for name in order:
            start, shape = packed.layout[name]
            size = int(np.prod(shape))
            out[start : start + size] = flat[at : at + size]
            at += size
        return out

    return model, packed, (lambda x: float(logp(point(x)))), pymc_gradient


@pytest.mark.parametrize(("variant", "ceiling"), VARIANTS)
def test_density_and_gradient_equal_pymc(variant, ceiling):
    design = _design(variant)
    overrides = DISTINCT_PRIORS if variant == "distinct priors" else {}
    priors = resolve_priors({**overrides, "ceiling": ceiling})
    _, packed, pymc_logp, pymc_gradient = _pymc_pair(design, priors)
    rng = np.random.default_rng(0)
    offsets = []
    # moderate points, and wide ones whose cell variances reach far out (the log products
    # then renormalise or fall back to one log per cell)
    for scale in (0.3, 0.3, 1.0, 4.0):
        x = rng.normal(0.0, scale, packed.n_dim)
        grad = np.empty_like(x)
        value = logp_and_gradient(x, packed.blob, grad)
        expected = pymc_logp(x)
        if not np.isfinite(expected):
            continue
        offsets.append(value - expected)
        np.testing.assert_allclose(grad, pymc_gradient(x), rtol=1e-8, atol=1e-8)
    assert len(offsets) >= 3
    # equal up to the normalising constants (data and priors only)
    assert np.ptp(offsets) < 1e-6 * max(1.0, abs(np.mean(offsets)))


@pytest.mark.parametrize(("log_noise_sd", "checked"), [(-11.0, "per block"), (-16.0, "per row")])
def test_running_products_renormalise_exactly(log_noise_sd, checked):
    """Tiny replicate noise takes the running products of pass 1 out of range within rows.

    With identical replicates and noise SDs of e^-11, every factor 2 sigma^2 is ~6e-10: a
    block of rows takes its proxy's product below 1e-100, and it is renormalised at the
    block's end. At e^-16 the factors (~3e-14) pass the bound on factors, and every row is
    checked. Both must equal PyMC's log density and gradient.
    """
    design = _simulated_design(n_checkpoints=8)  # 48 units: three blocks of rows
    # replicates that agree exactly keep the sums of squares over sigma^2 at zero
    design = replace(
        design,
        cell_se2=np.zeros_like(design.cell_se2),
        cell_ss=np.zeros_like(design.cell_ss),
    )
    assert design.n_units > 2 * _CHECK_ROWS
    priors = resolve_priors()
    _, packed, pymc_logp, pymc_gradient = _pymc_pair(design, priors)
    factor = 2.0 * math.exp(2.0 * log_noise_sd)
    assert (factor > 1.0 / _FACTOR_BOUND) == (checked == "per block")
    assert factor**_CHECK_ROWS < 1e-100
    rng = np.random.default_rng(2)
    offsets = []
    for scale in (0.0, 0.1, 0.1):
        x = rng.normal(0.0, 0.1, packed.n_dim)
        for name in ("noise_log_mu", "noise_log_sd_centred"):
            if name in packed.layout:
                start, shape = packed.layout[name]
                size = int(np.prod(shape))
                x[start : start + size] = log_noise_sd + rng.normal(0.0, scale, size)
        grad = np.empty_like(x)
        value = logp_and_gradient(x, packed.blob, grad)
        offsets.append(value - pymc_logp(x))
        np.testing.assert_allclose(grad, pymc_gradient(x), rtol=1e-8, atol=1e-8)
    assert np.ptp(offsets) < 1e-6 * max(1.0, abs(np.mean(offsets)))


def test_support_point_is_pymcs():
    design = _design("reference")
    priors = resolve_priors()
    model = build_model(design, priors=priors, n_factors=1)
    packed = pack(design, model, priors=priors)
    start = model.initial_point()
    expected = np.concatenate([np.ravel(start[name]) for name in packed.layout])
    np.testing.assert_allclose(support_point(packed, priors), expected, atol=1e-6)


def test_jittered_start_is_the_most_probable_of_its_tries():
    design = _design("reference")
    priors = resolve_priors()
    model = build_model(design, priors=priors, n_factors=1)
    packed = pack(design, model, priors=priors)
    start = support_point(packed, priors)
    grad = np.empty(packed.n_dim)
    chosen = jittered_start(start, packed.blob, seed=3, tries=6)
    # the same seed draws the same candidates: the chosen one is among them, the best
    candidates = start + np.random.default_rng(3).uniform(-1.0, 1.0, size=(6, packed.n_dim))
    values = [logp_and_gradient(c, packed.blob, grad) for c in candidates]
    np.testing.assert_array_equal(chosen, candidates[int(np.argmax(values))])
    assert np.array_equal(chosen, jittered_start(start, packed.blob, seed=3, tries=6))
    assert not np.array_equal(chosen, jittered_start(start, packed.blob, seed=4, tries=6))
    # a single try is PyMC's plain jitter
    np.testing.assert_array_equal(
        jittered_start(start, packed.blob, seed=3, tries=1), candidates[0]
    )


def test_jittered_start_passes_over_non_finite_densities(monkeypatch):
    import bayesproxy.model.native as native

    start = np.zeros(3)
    candidates = start + np.random.default_rng(0).uniform(-1.0, 1.0, size=(4, 3))
    values = iter([np.nan, -np.inf, -5.0, np.inf])
    monkeypatch.setattr(native, "logp_and_gradient", lambda x, blob, grad: next(values))
    np.testing.assert_array_equal(
        native.jittered_start(start, None, seed=0, tries=4), candidates[2]
    )
    values = iter([np.nan, np.nan])  # none finite: the first candidate
    np.testing.assert_array_equal(
        native.jittered_start(start, None, seed=0, tries=2), candidates[0]
    )


def test_draws_map_back_with_pymcs_transforms():
    design = _design("reference")
    priors = resolve_priors()
    model = build_model(design, priors=priors, n_factors=1)
    packed = pack(design, model, priors=priors)
    draws = np.random.default_rng(1).normal(size=(2, 3, packed.n_dim))
    post = to_constrained(
        draws, packed, dims=dict(model.named_vars_to_dims), coords=dict(model.coords)
    )
    for rv in model.free_RVs:
        value = model.rvs_to_values[rv]
        start, shape = packed.layout[value.name]
        raw = draws[1, 2, start : start + int(np.prod(shape))].reshape(shape)
        transform = model.rvs_to_transforms[rv]
        expected = raw
        if transform is not None:
            backward = transform.backward(pt.as_tensor(raw), *rv.owner.inputs)
            expected = backward.eval(mode="FAST_COMPILE")
        np.testing.assert_allclose(post[rv.name].values[1, 2], expected, rtol=1e-12, atol=1e-12)
        if rv.name in model.named_vars_to_dims:
            assert post[rv.name].dims[2:] == tuple(model.named_vars_to_dims[rv.name])


def test_supports_only_the_default_model():
    design = _design("reference")
    assert supports(design, n_factors=1)
    assert not supports(design, n_factors=2)
    no_counts = replace(design, target_n_items=np.full(design.target_unit.shape, np.nan))
    assert not supports(no_counts, n_factors=1)


def test_common_half_dof_flags_mixed_proxies():
    half = np.array([[1.0, 0.0, 0.5, 0.0], [1.0, 0.0, 1.0, 1.5]])
    assert common_half_dof(half).tolist() == [1.0, 0.0, -1.0, 1.5]


def test_hand_written_and_pymc_graph_fits_agree():
    """Same table, same settings: posterior means agree within Monte Carlo error."""
    import warnings

    from bayesproxy import ProxyForecaster
    from bayesproxy.errors import ConvergenceWarning

    sim = simulate(n_families=3, n_runs_per_family=2, n_checkpoints=4, n_proxies=6, random_seed=5)
    fits = {}
    for density in ("auto", "pymc"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            fc = ProxyForecaster(target=sim.table.target, density=density).fit(
                sim.table, draws=500, tune=500, chains=2, random_seed=1
            )
        fits[density] = fc
    import json

    used = {d: json.loads(f.datatree.attrs["sampler"])["density_used"] for d, f in fits.items()}
    assert used == {"auto": "hand-written", "pymc": "pymc"}
    a = fits["auto"].datatree["posterior"]
    b = fits["pymc"].datatree["posterior"]
    assert set(a.data_vars) == set(b.data_vars)
    for name in ("beta", "alpha", "loading", "unique_sd", "noise_sd", "capability"):
        x, y = a[name], b[name]
        assert x.dims == y.dims
        # difference of two means over (2 x 500) autocorrelated draws: a few posterior SDs /
        # sqrt(ESS); 0.25 posterior SD leaves room and still catches a wrong transform
        sd = np.sqrt(0.5 * (x.var(("chain", "draw")) + y.var(("chain", "draw")))) + 1e-12
        diff = np.abs(x.mean(("chain", "draw")) - y.mean(("chain", "draw"))) / sd
        assert float(diff.max()) < 0.3, name


def test_unknown_density_is_refused_at_the_door():
    from bayesproxy import ProxyForecaster
    from bayesproxy.methods.base import MethodInputError

    with pytest.raises(MethodInputError, match="density must be one of"):
        ProxyForecaster(target="t", density="jax")
