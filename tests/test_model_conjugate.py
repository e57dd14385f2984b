"""The conjugate forecast of new units: the fast paths against the plain dense code.

``conjugate_capability`` runs one compiled pass over all units with one factor; with several
it computes each unit's cell precisions once per observation pattern shared by several units
(one matrix product per pattern) and densely for the others. These tests pin that every
path, and the code they replaced, give the same draws from the same noise up to
floating-point round-off, on synthetic posterior draws (no MCMC): a table with
shared and unshared patterns, unobserved cells, replicates, stderrs, units with no proxy at
all, new families and runs, and unknown compute.
"""

from __future__ import annotations

import dataclasses
import itertools
import warnings

import numpy as np
import pytest
from scipy import stats

from bayesproxy import datasets
from bayesproxy.methods.base import make_forecast_frame
from bayesproxy.model.design import Design, build_design
from bayesproxy.model.predict import (
    ParamDraws,
    _patterns,
    conjugate_capability,
    one_factor_capability,
    target_draws,
    unit_block_noise,
)
from bayesproxy.threads import row_blocks

S, K = 60, 7
FAMILIES = ["f0", "f1", "f2"]
RUNS = ["r0", "r1", "r2", "r3"]


def _draws(n_factors: int, seed: int = 0) -> ParamDraws:
    """Random posterior draws with the shapes of a fit (S draws, K proxies)."""
    rng = np.random.default_rng(seed)
    D, F, R = n_factors, len(FAMILIES), len(RUNS)
    pos = lambda *shape: rng.uniform(0.2, 1.2, shape)  # noqa: E731
    values = {
        "family_intercept": rng.normal(size=(S, F, D)),
        "family_intercept_sd": pos(S, D),
        "family_slope": rng.normal(1.0, 0.3, (S, F, D)),
        "slope_mu": rng.normal(1.0, 0.2, (S, D)),
        "family_slope_sd": pos(S, D),
        "proxy_intercept": rng.normal(size=(S, K)),
        "loading": rng.normal(size=(S, K, D)),
        "unique_sd": pos(S, K),
        "noise_sd": pos(S, K),
        "unit_sd": pos(S, D),
        "alpha": rng.normal(size=S),
        "beta": rng.normal(size=(S, D)),
        "discrepancy_sd": pos(S),
        "run_intercept": rng.normal(0.0, 0.3, (S, R, D)),
        "run_intercept_sd": pos(S, D),
        "ceiling": rng.uniform(0.9, 1.0, S),
    }
    return ParamDraws(
        values=values,
        families=FAMILIES,
        runs=RUNS,
        proxies=[f"p{k}" for k in range(K)],
        index=np.arange(S),
    )


@pytest.fixture(scope="module")
def base_design() -> Design:
    sim = datasets.simulate(n_proxies=K, n_replicates=3, holdout_share=0.2, random_seed=0)
    return build_design(sim.table, target=sim.table.target, require_target=False)


def _mixed_design(base: Design, seed: int = 1) -> Design:
    """Units in shuffled order whose cell rows repeat (shared patterns) or not.

    - 12 units of pattern A: every cell observed, 3 replicates, no stderr;
    - 9 units of pattern B: some cells unobserved, 1-3 replicates, a stderr per cell;
    - 8 units each with their own stderrs (patterns of their own);
    - 4 units with no proxy evaluated (one shared, empty pattern);
    - 1 unit with a single observed cell.
    """
    rng = np.random.default_rng(seed)
    seen_b = rng.random(K) < 0.6
    seen_b[0] = True
    reps_b = rng.integers(1, 4, K)
    se2_b = rng.uniform(0.01, 0.2, K)
    rows = []  # (observed mask, replicate counts, se2) per unit
    rows += [(np.ones(K, bool), np.full(K, 3), np.zeros(K))] * 12
    rows += [(seen_b, reps_b, se2_b)] * 9
    for _ in range(8):
        seen = rng.random(K) < 0.8
        rows.append((seen, rng.integers(1, 4, K), rng.uniform(0.01, 0.2, K)))
    rows += [(np.zeros(K, bool), np.ones(K, int), np.zeros(K))] * 4
    one = np.zeros(K, bool)
    one[3] = True
    rows.append((one, np.full(K, 2), np.full(K, 0.05)))
    order = rng.permutation(len(rows))
    rows = [rows[i] for i in order]
    N = len(rows)
    cell_unit, cell_proxy, cell_n, cell_se2 = [], [], [], []
    for n, (seen, reps, se2) in enumerate(rows):
        for k in np.flatnonzero(seen):
            cell_unit.append(n)
            cell_proxy.append(k)
            cell_n.append(float(reps[k]))
            cell_se2.append(float(se2[k]))
    cell_unit = np.array(cell_unit, dtype=np.intp)
    family = rng.choice([*FAMILIES, "new", ""], N)
    run = rng.choice([*RUNS, "new-run"], N)
    x = rng.normal(size=N)
    x[rng.random(N) < 0.25] = np.nan  # unknown compute
    return dataclasses.replace(
        base,
        proxies=[f"p{k}" for k in range(K)],
        units=np.array([f"u{n}" for n in range(N)]),
        model=np.array([f"m{n}" for n in range(N)]),
        step=np.full(N, np.nan),
        family=family,
        run=run,
        x=x,
        cell_unit=cell_unit,
        cell_proxy=np.array(cell_proxy, dtype=np.intp),
        cell_mean=rng.normal(size=len(cell_unit)),
        cell_n=np.array(cell_n),
        cell_ss=np.zeros(len(cell_unit)),
        cell_se2=np.array(cell_se2),
    )


# ------------------------- the replaced code (eef7c7a), verbatim but for one fix in _old_prior
def _old_prior(draws: ParamDraws, design: Design) -> tuple[np.ndarray, np.ndarray]:
    """Prior mean (S, N, D) and covariance (S, N, D, D) of the capability of each unit."""
    v = draws.values
    S, N = draws.n, design.n_units
    D = v["slope_mu"].shape[-1]
    fam_pos = {f: i for i, f in enumerate(draws.families)}
    fam = np.where(design.family == "", "(unknown)", design.family)
    f_idx = np.array([fam_pos.get(f, -1) for f in fam])
    known_f = f_idx >= 0
    a = np.zeros((S, N, D))
    a[:, known_f] = v["family_intercept"][:, f_idx[known_f]]
    b = np.broadcast_to(v["slope_mu"][:, None, :], (S, N, D)).copy()
    b[:, known_f] = v["family_slope"][:, f_idx[known_f]]
    var = np.broadcast_to(v["unit_sd"][:, None, :] ** 2, (S, N, D)).copy()
    # a new family: its intercept and slope are draws from the population
    var[:, ~known_f] += v["family_intercept_sd"][:, None, :] ** 2
    has_x = np.isfinite(design.x)
    x = np.nan_to_num(design.x, nan=0.0)
    new_slope_var = (
        np.where(~known_f, 1.0, 0.0)[None, :, None] * v["family_slope_sd"][:, None, :] ** 2
    )
    var = var + new_slope_var * (x**2)[None, :, None]
    if "run_intercept" in v:
        run_pos = {r: i for i, r in enumerate(draws.runs)}
        r_idx = np.array([run_pos.get(r, -1) for r in design.run])
        known_r = r_idx >= 0
        a[:, known_r] += v["run_intercept"][:, r_idx[known_r]]
        var[:, ~known_r] += v["run_intercept_sd"][:, None, :] ** 2
    mean = a + b * x[None, :, None]
    cov = np.zeros((S, N, D, D))
    idx = np.arange(D)
    cov[:, :, idx, idx] = var
    # unknown compute: x ~ N(0, 1) integrated out adds b b' (plus the slope spread)
    no_x = ~has_x
    if no_x.any():
        bb = b[:, no_x, :, None] * b[:, no_x, None, :]
        extra = (
            np.where(~known_f[no_x], 1.0, 0.0)[None, :, None]
            * v["family_slope_sd"][:, None, :] ** 2
        )
        cov[:, no_x] += bb
        # the one change: eef7c7a had ``cov[:, no_x, idx, idx] += extra``, which raises
        # (boolean and integer indices broadcast together), so that any new unit with
        # unknown compute failed to forecast
        sub = cov[:, no_x]
        sub[..., idx, idx] += extra
        cov[:, no_x] = sub
    return mean, cov


def _old_conjugate_capability(
    draws: ParamDraws,
    design: Design,
    *,
    rng: np.random.Generator,
    chunk: int = 2048,
) -> tuple[np.ndarray, np.ndarray]:
    """The dense implementation that the grouped one replaced (commit eef7c7a)."""
    v = draws.values
    prior_mean, prior_cov = _old_prior(draws, design)
    S, N, D = prior_mean.shape
    K = len(draws.proxies)
    mean_cells = np.full((N, K), np.nan)
    n_cells = np.zeros((N, K))
    se2_cells = np.zeros((N, K))
    mean_cells[design.cell_unit, design.cell_proxy] = design.cell_mean
    n_cells[design.cell_unit, design.cell_proxy] = design.cell_n
    se2_cells[design.cell_unit, design.cell_proxy] = design.cell_se2
    lam = v["loading"]  # (S, K, D)
    mu = v["proxy_intercept"]  # (S, K)
    psi2 = v["unique_sd"] ** 2
    sig2 = v["noise_sd"] ** 2
    theta = np.empty((S, N, D))
    theta_mean = np.empty((N, D))
    if D == 1:  # the one-factor path draws its noise per block of units
        noise = unit_block_noise(rng, S, N)
        eps = np.concatenate([noise(rows) for rows in row_blocks(N)]).T[..., None]
    else:
        eps = rng.standard_normal((S, N, D))
    for start in range(0, N, chunk):
        sl = slice(start, min(start + chunk, N))
        obs = n_cells[sl] > 0  # (n, K)
        J = np.where(obs, n_cells[sl], 1.0)
        # per-draw, per-cell precision of the replicate mean; 0 where unobserved
        var = psi2[:, None, :] + (sig2[:, None, :] + se2_cells[sl][None]) / J[None]
        prec = np.where(obs[None], 1.0 / var, 0.0)  # (S, n, K)
        resid = np.where(obs[None], np.nan_to_num(mean_cells[sl])[None] - mu[:, None, :], 0.0)
        if D == 1:
            l1 = lam[:, :, 0]  # (S, K)
            p0 = 1.0 / prior_cov[:, sl, 0, 0]
            post_prec = p0 + np.einsum("snk,sk->sn", prec, l1**2)
            h = p0 * prior_mean[:, sl, 0] + np.einsum("snk,sk->sn", prec * resid, l1)
            m = h / post_prec
            theta[:, sl, 0] = m + eps[:, sl, 0] / np.sqrt(post_prec)
            theta_mean[sl, 0] = m.mean(axis=0)
        else:
            p0 = np.linalg.inv(prior_cov[:, sl])
            post_prec = p0 + np.einsum("snk,skd,ske->snde", prec, lam, lam)
            h = np.einsum("snde,sne->snd", p0, prior_mean[:, sl]) + np.einsum(
                "snk,skd->snd", prec * resid, lam
            )
            cov = np.linalg.inv(post_prec)
            m = np.einsum("snde,sne->snd", cov, h)
            chol = np.linalg.cholesky(cov)
            theta[:, sl] = m + np.einsum("snde,sne->snd", chol, eps[:, sl])
            theta_mean[sl] = m.mean(axis=0)
    return theta, theta_mean


def test_patterns_put_shared_rows_together(base_design):
    design = _mixed_design(base_design)
    N = design.n_units
    J, se2 = np.ones((N, K)), np.full((N, K), np.inf)
    J[design.cell_unit, design.cell_proxy] = design.cell_n
    se2[design.cell_unit, design.cell_proxy] = design.cell_se2
    order, edges = _patterns(J, se2)
    assert sorted(order.tolist()) == list(range(N))
    # patterns A (12 units), B (9) and no proxy (4) are shared; 9 units have their own
    sizes = sorted(np.diff(edges).tolist())
    assert sizes == [4, 9, 12] and N - edges[-1] == 9
    for start, stop in itertools.pairwise(edges):
        units = order[start:stop]
        assert (J[units] == J[units[0]]).all() and (se2[units] == se2[units[0]]).all()
    own = order[edges[-1] :]
    assert (np.diff(own) > 0).all()
    # no shared row: no reordering
    rng = np.random.default_rng(0)
    assert _patterns(np.ones((5, K)), rng.random((5, K)))[0] is None


@pytest.mark.parametrize("n_factors", [1, 2])
def test_grouped_and_dense_paths_agree_with_the_replaced_code(base_design, n_factors):
    draws = _draws(n_factors)
    design = _mixed_design(base_design)
    grouped = conjugate_capability(draws, design, rng=np.random.default_rng(7))
    dense = conjugate_capability(draws, design, rng=np.random.default_rng(7), grouping=False)
    small_blocks = conjugate_capability(draws, design, rng=np.random.default_rng(7), chunk=2)
    reference = _old_conjugate_capability(draws, design, rng=np.random.default_rng(7))
    assert grouped[0].shape == (S, design.n_units, n_factors)
    assert grouped[1].shape == (design.n_units, n_factors)
    for other in (dense, small_blocks, reference):
        np.testing.assert_allclose(grouped[0], other[0], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(grouped[1], other[1], rtol=1e-10, atol=1e-12)
    assert np.isfinite(grouped[0]).all()


def test_unit_without_proxies_gets_its_prior(base_design):
    draws = _draws(1)
    design = _mixed_design(base_design)
    empty = np.setdiff1d(np.arange(design.n_units), design.cell_unit)
    assert len(empty) == 4
    theta, _ = conjugate_capability(draws, design, rng=np.random.default_rng(3))
    reference, _ = _old_conjugate_capability(draws, design, rng=np.random.default_rng(3))
    np.testing.assert_allclose(theta[:, empty], reference[:, empty], rtol=1e-12, atol=1e-14)


def test_no_units(base_design):
    design = dataclasses.replace(
        _mixed_design(base_design),
        units=np.array([], dtype=str),
        model=np.array([], dtype=str),
        step=np.zeros(0),
        family=np.array([], dtype=str),
        run=np.array([], dtype=str),
        x=np.zeros(0),
        cell_unit=np.zeros(0, np.intp),
        cell_proxy=np.zeros(0, np.intp),
        cell_mean=np.zeros(0),
        cell_n=np.zeros(0),
        cell_ss=np.zeros(0),
        cell_se2=np.zeros(0),
    )
    theta, theta_mean = conjugate_capability(_draws(1), design, rng=np.random.default_rng(0))
    assert theta.shape == (S, 0, 1) and theta_mean.shape == (0, 1)


def _closed_form_scores(v, lin, sd, *, seed, delta=None):
    """Scores (N, S) from the link's logits ``lin`` and noise SD ``sd`` (S, N), chance 0.25.

    The noise is what ``target_draws`` draws from ``default_rng(seed)``; finite entries of
    ``delta`` replace the noise term.
    """
    n_units = lin.shape[1]
    noise = unit_block_noise(np.random.default_rng(seed), S, n_units)
    fresh = sd * np.concatenate([noise(rows) for rows in row_blocks(n_units)]).T
    if delta is not None:
        fresh = np.where(np.isfinite(delta), delta, fresh)
    ceiling = v["ceiling"][:, None]
    return np.clip(0.25 + (ceiling - 0.25) / (1.0 + np.exp(-(lin + fresh))), 0.25, ceiling).T


@pytest.mark.parametrize(
    ("with_excess", "with_delta"), [(False, False), (True, False), (True, True)]
)
def test_target_draws_match_the_closed_form(with_excess, with_delta, monkeypatch):
    monkeypatch.setattr("bayesproxy.threads.ROW_BLOCK", 4)  # 11 units: blocks of 4, 4, 3
    draws = _draws(2)
    rng = np.random.default_rng(5)
    theta = rng.normal(size=(S, 11, 2))
    excess = np.where(rng.random(11) < 0.5, rng.uniform(0, 2, 11), 0.0) * with_excess
    ref_cov = np.array([[1.0, 0.3], [0.3, 0.5]])
    # known discrepancies for some units (NaN elsewhere: drawn), as for fitted units
    delta = np.full((S, 11), np.nan)
    delta[:, [1, 4, 9]] = rng.normal(size=(S, 3))
    q = target_draws(
        draws,
        theta,
        chance=0.25,
        excess=excess,
        extrapolation_scale=0.75,
        rng=np.random.default_rng(9),
        reference_cov=ref_cov,
        delta=delta if with_delta else None,
    )
    v = draws.values
    lin = v["alpha"][:, None] + np.einsum("snd,sd->sn", theta, v["beta"])
    link_sd = np.sqrt(np.einsum("sd,de,se->s", v["beta"], ref_cov, v["beta"]))
    extra = 0.75 * link_sd[:, None] * excess[None]
    sd = np.sqrt(v["discrepancy_sd"][:, None] ** 2 + extra**2)
    expected = _closed_form_scores(v, lin, sd, seed=9, delta=delta if with_delta else None)
    np.testing.assert_allclose(q, expected, rtol=1e-14)


def test_target_draws_fold_the_capability_noise_into_the_link(base_design, monkeypatch):
    """theta_sd: one normal per draw for the capability's and the link's noise together."""
    monkeypatch.setattr("bayesproxy.threads.ROW_BLOCK", 4)
    draws = _draws(1)
    design = _mixed_design(base_design)
    mean, sd, theta_mean = one_factor_capability(draws, design)
    N = design.n_units
    assert mean.shape == (S, N, 1) and sd.shape == (S, N) and theta_mean.shape == (N, 1)
    np.testing.assert_allclose(theta_mean[:, 0], mean[..., 0].mean(axis=0), rtol=1e-12)
    excess = np.linspace(0.0, 1.5, N)
    q = target_draws(
        draws,
        mean,
        chance=0.25,
        excess=excess,
        extrapolation_scale=0.75,
        rng=np.random.default_rng(9),
        theta_sd=sd,
    )
    # the closed form: sd of beta * theta + discrepancy is sqrt((beta sd)^2 + sd_link^2)
    v = draws.values
    beta = v["beta"][:, 0][:, None]
    link_var = v["discrepancy_sd"][:, None] ** 2 + (0.75 * excess[None]) ** 2
    total_sd = np.sqrt(link_var + (beta * sd) ** 2)
    lin = v["alpha"][:, None] + beta * mean[..., 0]
    np.testing.assert_allclose(q, _closed_form_scores(v, lin, total_sd, seed=9), rtol=1e-12)
    # and the same distribution as drawing the capability first (many draws of one unit)
    theta, _ = conjugate_capability(draws, design, rng=np.random.default_rng(1))
    assert np.isfinite(theta).all()
    many = dataclasses.replace(
        draws,
        values={k: np.repeat(a[:1], 40_000, axis=0) for k, a in v.items()},
        index=np.arange(40_000),
    )
    unit = design.n_units - 1
    m1, s1 = (
        np.repeat(mean[:1, unit : unit + 1], 40_000, axis=0),
        np.repeat(sd[:1, unit : unit + 1], 40_000, axis=0),
    )
    kwargs = {"chance": 0.25, "excess": np.array([0.5]), "extrapolation_scale": 0.75}
    folded = target_draws(many, m1, rng=np.random.default_rng(2), theta_sd=s1, **kwargs)[0]
    eps = np.random.default_rng(3).standard_normal((40_000, 1, 1))
    drawn = target_draws(many, m1 + s1[..., None] * eps, rng=np.random.default_rng(4), **kwargs)[0]
    assert stats.ks_2samp(folded, drawn).pvalue > 0.001
    # a known discrepancy replaces the link's noise only: the capability's stays
    known = np.full((40_000, 1), 0.3)
    folded = target_draws(
        many, m1, rng=np.random.default_rng(5), theta_sd=s1, delta=known, **kwargs
    )[0]
    drawn = target_draws(
        many, m1 + s1[..., None] * eps, rng=np.random.default_rng(6), delta=known, **kwargs
    )[0]
    assert stats.ks_2samp(folded, drawn).pvalue > 0.001
    assert folded.std() > 0.5 * drawn.std() > 0  # not a constant: the capability's noise stays
    with pytest.raises(ValueError, match="one factor"):
        target_draws(
            _draws(2),
            np.zeros((S, 3, 2)),
            theta_sd=np.ones((S, 3)),
            rng=np.random.default_rng(0),
            **kwargs | {"excess": np.zeros(3)},
        )


def test_forecast_frame_quantiles_match_nanquantile():
    rng = np.random.default_rng(2)
    samples = rng.normal(size=(6, 401))
    samples[1, 7] = np.nan  # a few NaN draws
    samples[4] = np.nan  # no usable draw
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no all-NaN warning
        frame = make_forecast_frame(
            list("abcdef"),
            model=list("abcdef"),
            step=np.zeros(6),
            mean=np.zeros(6),
            samples=samples,
            prob=0.8,
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lower = np.nanquantile(samples, 0.1, axis=1)
        median = np.nanmedian(samples, axis=1)
        upper = np.nanquantile(samples, 0.9, axis=1)
    np.testing.assert_allclose(frame["lower"], lower, rtol=1e-14)
    np.testing.assert_allclose(frame["median"], median, rtol=1e-14)
    np.testing.assert_allclose(frame["upper"], upper, rtol=1e-14)
    assert frame["median"].isna().tolist() == [False] * 4 + [True, False]


@pytest.mark.parametrize("n_factors", [1, 2])
def test_forecast_draws_do_not_depend_on_the_number_of_threads(base_design, n_factors, monkeypatch):
    """Blocks of units run on threads; each block draws from its own generator."""
    monkeypatch.setattr("bayesproxy.threads.ROW_BLOCK", 5)  # several blocks
    draws = _draws(n_factors)
    design = _mixed_design(base_design)

    def run(cpus: int) -> tuple[np.ndarray, np.ndarray]:
        monkeypatch.setattr("bayesproxy.threads.usable_cpus", lambda: cpus)
        theta, _ = conjugate_capability(draws, design, rng=np.random.default_rng(4))
        q = target_draws(
            draws,
            theta,
            chance=0.25,
            excess=np.linspace(0, 1, design.n_units),
            extrapolation_scale=0.75,
            rng=np.random.default_rng(5),
        )
        return theta, q

    one, two = run(1), run(2)
    np.testing.assert_array_equal(one[0], two[0])
    np.testing.assert_array_equal(one[1], two[1])
