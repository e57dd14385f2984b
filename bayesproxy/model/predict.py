"""Forecasts without MCMC: conjugate capability updates per posterior draw.

Given one posterior draw of the model's parameters, a new unit's capability has a Gaussian
prior (its family / run / compute hierarchy; population levels when the family or run is
new, and the compute term integrated out when its compute is unknown) and its proxies are
linear-Gaussian in the capability, so ``theta | proxies`` is Gaussian in closed form. Doing
this for every draw and unit in NumPy turns a fitted posterior into forecasts for a whole new
table in well under a second.

The forecast of the target is the unit's true score
``q = c + (u - c) * sigmoid(alpha + beta' theta + delta)`` with the link discrepancy
``delta ~ N(0, discrepancy_sd^2 + (extrapolation_scale * link_sd * excess)^2)``, where
``excess`` is how far the unit lies beyond the training units (see :func:`distances`) and
``link_sd`` is how much the link's logit moves per training SD of capability. The link's
uncertainty thus grows in proportion to how far it is extrapolated: with the default
``extrapolation_scale`` of 0.75 the 90% interval keeps widening towards ``[c, u]`` instead of
collapsing onto the ceiling (or the floor) as the sigmoid saturates. Intervals always stay
inside ``[c, u]``.

Examples
--------
>>> import numpy as np
>>> d, excess = distances(np.array([[0.0], [3.0]]), np.array([[-1.0], [0.0], [1.0]]))
>>> d.round(2).tolist(), excess.round(2).tolist()
([0.0, 3.0], [0.0, 2.0])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import xarray as xr

from bayesproxy.model.design import Design
from bayesproxy.model.kernels import one_factor_posterior, true_score_draws
from bayesproxy.threads import block_generators, for_row_blocks

__all__ = [
    "ParamDraws",
    "conjugate_capability",
    "distances",
    "one_factor_capability",
    "param_draws",
    "target_draws",
]

_PARAMS = (
    "family_intercept",
    "family_intercept_sd",
    "family_slope",
    "slope_mu",
    "family_slope_sd",
    "proxy_intercept",
    "loading",
    "unique_sd",
    "noise_sd",
    "unit_sd",
    "alpha",
    "beta",
    "discrepancy_sd",
)


@dataclass(frozen=True)
class ParamDraws:
    """Posterior draws of the parameters forecasting needs, flattened to a sample axis."""

    values: dict[str, np.ndarray]
    families: list[str]
    runs: list[str]
    proxies: list[str]
    index: np.ndarray  # which flattened (chain, draw) positions were kept

    @property
    def n(self) -> int:
        """Number of draws."""
        return len(self.index)


def param_draws(
    posterior: xr.Dataset,
    *,
    max_draws: int | None = None,
    ceiling: float | None = None,
    rng: np.random.Generator | None = None,
) -> ParamDraws:
    """Flatten the posterior's (chain, draw) axes and keep up to ``max_draws`` draws.

    Parameters
    ----------
    posterior : xarray.Dataset
        The ``posterior`` group of a fit.
    max_draws : int, optional
        Keep this many draws, evenly spaced (deterministic); all when None.
    ceiling : float, optional
        The fixed ceiling when the model did not learn one.
    rng : numpy.random.Generator, optional
        Unused; kept for symmetry with the other helpers.

    Returns
    -------
    ParamDraws
    """
    del rng
    stacked = posterior.stack(sample=("chain", "draw"))
    total = stacked.sizes["sample"]
    if max_draws is None or max_draws >= total:
        index = np.arange(total)
    else:
        index = np.unique(np.linspace(0, total - 1, max_draws).round().astype(int))
    names = list(_PARAMS)
    for optional in ("run_intercept", "run_intercept_sd", "ceiling"):
        if optional in stacked:
            names.append(optional)
    values = {}
    for name in names:
        da = stacked[name]
        values[name] = np.moveaxis(np.asarray(da.values, float), -1, 0)[index]
    if "ceiling" not in values:
        values["ceiling"] = np.full(len(index), 1.0 if ceiling is None else float(ceiling))
    return ParamDraws(
        values=values,
        families=[str(f) for f in posterior["family"].values],
        runs=[str(r) for r in posterior["run"].values] if "run" in posterior.coords else [],
        proxies=[str(p) for p in posterior["proxy"].values],
        index=index,
    )


def _take_known(values: np.ndarray, idx: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """``values[:, idx]`` (S, N, D) where ``idx >= 0``, else ``fallback`` (S, D) broadcast."""
    S, D = fallback.shape
    known = idx >= 0
    if not known.any():
        return np.broadcast_to(fallback[:, None, :], (S, len(idx), D)).copy()
    picked = _take_units(values, np.where(known, idx, 0))
    if known.all():
        return picked
    return np.where(known[None, :, None], picked, fallback[:, None, :])


def _level_index(levels: list[str], labels: np.ndarray) -> np.ndarray:
    """Position of each label among the fitted ``levels``; -1 for a level the fit has not seen."""
    position = {level: i for i, level in enumerate(levels)}
    return np.array([position.get(label, -1) for label in labels], dtype=np.int64)


def _family_index(draws: ParamDraws, family: np.ndarray) -> np.ndarray:
    """:func:`_level_index` of families (a unit without one is in ``"(unknown)"``)."""
    return _level_index(draws.families, np.where(family == "", "(unknown)", family))


def _prior(
    draws: ParamDraws, design: Design, *, units: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Prior mean (S, N, D) and covariance (S, N, D, D) of the capability of each unit.

    ``units`` (indices into the design) gives the units and their order; default all.
    """
    v = draws.values
    pick = slice(None) if units is None else units
    family, run, x = design.family[pick], np.asarray(design.run)[pick], design.x[pick]
    S, N = draws.n, len(x)
    D = v["slope_mu"].shape[-1]
    f_idx = _family_index(draws, family)
    new_f = (f_idx < 0).astype(float)[None, :, None]
    zero = np.zeros((S, D))
    # a new family: its intercept and slope are draws from the population
    a = _take_known(v["family_intercept"], f_idx, zero)
    b = _take_known(v["family_slope"], f_idx, v["slope_mu"])
    has_x = np.isfinite(x)
    x = np.nan_to_num(x, nan=0.0)
    # unknown compute: x ~ N(0, 1) integrated out adds b b' and the slope spread (x^2 -> 1)
    x2 = np.where(has_x, x**2, 1.0)[None, :, None]
    var = v["unit_sd"][:, None, :] ** 2 + new_f * (
        v["family_intercept_sd"][:, None, :] ** 2 + v["family_slope_sd"][:, None, :] ** 2 * x2
    )
    if "run_intercept" in v:
        r_idx = _level_index(draws.runs, run)
        a += _take_known(v["run_intercept"], r_idx, zero)
        var += (r_idx < 0).astype(float)[None, :, None] * v["run_intercept_sd"][:, None, :] ** 2
    mean = a + b * x[None, :, None]
    no_x = ~has_x
    if D == 1:
        if no_x.any():
            var += np.where(no_x[None, :, None], b * b, 0.0)
        return mean, var[..., None]
    cov = np.zeros((S, N, D, D))
    idx = np.arange(D)
    cov[:, :, idx, idx] = var
    if no_x.any():
        cov[:, no_x] += b[:, no_x, :, None] * b[:, no_x, None, :]
    return mean, cov


def _cell_arrays(design: Design, n_proxies: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cell mean, replicate count and squared stderr per unit and proxy, shape (N, K) each.

    An unobserved cell has mean 0, count 1 and squared stderr ``inf``, so that its
    precision ``1 / (psi2 + (sig2 + se2) / J)`` is exactly 0 without a mask.
    """
    shape = (design.n_units, n_proxies)
    y, J, se2 = np.zeros(shape), np.ones(shape), np.full(shape, np.inf)
    seen = np.asarray(design.cell_n) > 0
    cells = (design.cell_unit[seen], design.cell_proxy[seen])
    y[cells] = np.nan_to_num(design.cell_mean[seen])
    J[cells] = design.cell_n[seen]
    se2[cells] = design.cell_se2[seen]
    return y, J, se2


def _patterns(J: np.ndarray, se2: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
    """Order units so that those sharing their observation pattern are adjacent.

    A pattern is a unit's row of cell counts and squared stderrs (which cells are observed,
    with how many replicates and which stderr). Returns ``order`` (unit indices: the units
    of each pattern shared by two or more units, pattern by pattern, then the units whose
    pattern is their own, ascending) and ``edges``, the positions in ``order`` where the
    shared patterns start, followed by where the unshared units start. ``order`` is None
    when no pattern is shared (the identity).
    """
    key = np.ascontiguousarray(np.concatenate([J, se2], axis=1))
    if key.shape[0] < 2:
        return None, np.zeros(1, dtype=np.intp)
    # one opaque record per row: a byte-wise sort, far cheaper than np.unique(axis=0)
    rows = key.view(np.dtype((np.void, key.dtype.itemsize * key.shape[1]))).ravel()
    _, inverse, counts = np.unique(rows, return_inverse=True, return_counts=True)
    inverse = inverse.ravel()
    shared = counts[inverse] > 1
    if not shared.any():
        return None, np.zeros(1, dtype=np.intp)
    grouped = np.flatnonzero(shared)
    grouped = grouped[np.argsort(inverse[grouped], kind="stable")]
    starts = np.flatnonzero(np.diff(inverse[grouped], prepend=-1))
    edges = np.append(starts, len(grouped))
    return np.concatenate([grouped, np.flatnonzero(~shared)]), edges


def _matmul_tiled(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Multiply 2-D arrays in row blocks that OpenBLAS runs on one thread each.

    OpenBLAS spreads a product of more than 2**18 multiply-adds over threads. On a machine
    whose cores are busy the threads wait on each other: 150 products of 1,000 x 39 by
    39 x 67 took 1.4-1.8 s on two busy cores, against 0.03 s on one thread. Blocks of at
    most 2**17 multiply-adds stay on the calling thread.
    """
    rows = max(1, (1 << 17) // max(1, a.shape[1] * b.shape[1]))
    if rows >= a.shape[0]:
        return a @ b
    out = np.empty((a.shape[0], b.shape[1]))
    for start in range(0, a.shape[0], rows):
        np.matmul(a[start : start + rows], b, out=out[start : start + rows])
    return out


def _take_units(a: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Return ``a[:, idx]`` of an (S, N, D) array (a 2-D take when D is 1: 4 times faster)."""
    if a.shape[2] == 1:
        return np.take(a[..., 0], idx, axis=1)[..., None]
    return np.take(a, idx, axis=1)


def conjugate_capability(
    draws: ParamDraws,
    design: Design,
    *,
    rng: np.random.Generator,
    chunk: int = 64,
    grouping: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Sample each unit's capability given its proxies, one draw per posterior draw.

    Per draw ``s`` a unit's proxy cell means are ``y_k ~ N(mu_k + lam_k' theta, v_k)`` with
    ``v_k = psi2_k + (sig2_k + se2_k) / J_k``, so the posterior precision is
    ``P0 + sum_k lam_k lam_k' / v_k`` and ``P theta_hat = P0 m0 + sum_k lam_k (y_k - mu_k) / v_k``.
    With one factor the sums over proxies run in one compiled pass over (unit, draw, proxy)
    (:func:`~bayesproxy.model.kernels.one_factor_posterior`). With several, the cell
    precisions ``1 / v_k`` depend on the unit only through its observation pattern (which
    cells are observed, with how many replicates and which stderr), so with ``grouping``
    they are computed once per pattern shared by several units and the sum over proxies
    becomes one matrix product per pattern; units whose pattern is their own (e.g. each
    with its evaluations' own stderr) take the dense path, in blocks of ``chunk`` units.
    All paths give the same draws up to floating-point round-off.

    Parameters
    ----------
    draws : ParamDraws
    design : Design
        The new table's design, built with the fitted model's scaling.
    rng : numpy.random.Generator
    chunk : int, default 64
        Several factors: units (or patterns) per block of the dense path; bounds memory at
        S x chunk x K (small blocks stay in the CPU cache).
    grouping : bool, default True
        Several factors: share the cell precisions between units with the same observation
        pattern; False takes the dense path for every unit.

    Returns
    -------
    theta : ndarray, shape (S, N, D)
        Capability draws.
    theta_mean : ndarray, shape (N, D)
        Posterior mean capability per unit (averaged over draws).

    Examples
    --------
    The forecaster calls it on a new table's design (``fc._draws()`` and ``build_design``
    with the fit's scaling):

    >>> theta, theta_mean = conjugate_capability(draws, design, rng=rng)  # doctest: +SKIP
    >>> theta.shape == (draws.n, design.n_units, 1)  # doctest: +SKIP
    True
    """
    v = draws.values
    S, N, K = draws.n, design.n_units, len(draws.proxies)
    D = v["slope_mu"].shape[-1]
    y, J, se2 = _cell_arrays(design, K)
    if D == 1:
        return _conjugate_one_factor(draws, design, y=y, J=J, se2=se2, rng=rng)
    order, edges = _patterns(J, se2) if grouping else (None, np.zeros(1, dtype=np.intp))
    prior_mean, prior_cov = _prior(draws, design, units=order)
    eps = rng.standard_normal((S, N, D))
    if order is not None:  # work on the units sorted by pattern: contiguous blocks
        y, J, se2, eps = y[order], J[order], se2[order], _take_units(eps, order)
    lam = v["loading"]  # (S, K, D)
    psi2 = v["unique_sd"] ** 2
    sig2 = v["noise_sd"] ** 2
    # one product with the cell precisions gives sum_k lam lam' / v and sum_k lam mu / v
    lamlam = (lam[..., :, None] * lam[..., None, :]).reshape(S, K, D * D)
    rhs = np.concatenate([lamlam, lam * v["proxy_intercept"][..., None]], axis=-1)

    def precision(rows: np.ndarray | slice) -> np.ndarray:
        """Cell precisions (S, n, K) of some units; exactly 0 where unobserved."""
        prec = sig2[:, None, :] + se2[rows][None]
        prec /= J[rows][None]
        prec += psi2[:, None, :]
        return np.reciprocal(prec, out=prec)

    # P (precision) and H (precision times mean) of theta: the prior's, plus the proxies'
    P = np.linalg.inv(prior_cov)
    H = np.einsum("snde,sne->snd", P, prior_mean)
    del prior_mean, prior_cov
    P = P.reshape(S, N, D * D)
    H = H.reshape(S, N, D)

    # shared patterns: precisions once per pattern, the sum over proxies of all its units
    # one matrix product (S, K) @ (K, n)
    for first in range(0, len(edges) - 1, chunk):
        starts = edges[first : first + chunk + 1]
        prec = precision(starts[:-1])  # (S, b, K)
        tc = prec @ rhs  # (S, b, D*D + D)
        for j in range(len(starts) - 1):
            sl = slice(starts[j], starts[j + 1])
            w = (prec[:, j, :, None] * lam).transpose(0, 2, 1).reshape(S * D, K)
            hy = _matmul_tiled(w, y[sl].T).reshape(S, D, -1).transpose(0, 2, 1)
            P[:, sl] += tc[:, j, None, : D * D]
            H[:, sl] += hy - tc[:, j, None, D * D :]
    # units with a pattern of their own: dense blocks
    for start in range(edges[-1], N, chunk):
        sl = slice(start, min(start + chunk, N))
        prec = precision(sl)  # (S, n, K)
        tc = prec @ rhs
        prec *= y[sl][None]
        P[:, sl] += tc[..., : D * D]
        H[:, sl] += prec @ lam - tc[..., D * D :]

    P = P.reshape(S, N, D, D)
    theta = np.empty((S, N, D))
    theta_mean = np.empty((N, D))
    for start in range(0, N, 2048):
        sl = slice(start, min(start + 2048, N))
        cov = np.linalg.inv(P[:, sl])
        m = np.einsum("snde,sne->snd", cov, H[:, sl])
        chol = np.linalg.cholesky(cov)
        theta[:, sl] = m + np.einsum("snde,sne->snd", chol, eps[:, sl])
        theta_mean[sl] = m.mean(axis=0)
    if order is not None:  # back to the units' order
        where = np.empty_like(order)
        where[order] = np.arange(N)
        theta, theta_mean = _take_units(theta, where), theta_mean[where]
    return theta, theta_mean


def _conjugate_one_factor(
    draws: ParamDraws,
    design: Design,
    *,
    y: np.ndarray,
    J: np.ndarray,
    se2: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`conjugate_capability` with one factor: one draw per posterior draw.

    The draw is from the Gaussian of :func:`one_factor_capability`; the noise is drawn
    block by block of units on parallel threads, each block from a generator of its own
    (see :func:`unit_block_noise`).
    """
    mean, sd, theta_mean = _one_factor_gaussian(draws, design, y=y, J=J, se2=se2)
    noise = unit_block_noise(rng, draws.n, design.n_units)

    def draw(rows: slice) -> None:
        block = noise(rows)
        block *= sd[rows]
        mean[rows] += block

    for_row_blocks(draw, design.n_units)
    # (S, N, 1) as every path returns, a view: target_draws reads its rows of units as is
    return mean.T[..., None], theta_mean[:, None]


def one_factor_capability(
    draws: ParamDraws, design: Design
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each unit's one-factor capability given its proxies: a Gaussian per posterior draw.

    What :func:`conjugate_capability` draws from, for callers that can fold the capability's
    noise into their own (see ``theta_sd`` of :func:`target_draws`): that saves one normal
    per draw and unit, a tenth of a forecast of 10,000 units.

    Parameters
    ----------
    draws : ParamDraws
        Of a one-factor fit.
    design : Design
        The new table's design, built with the fitted model's scaling.

    Returns
    -------
    mean : ndarray, shape (S, N, 1)
        Posterior mean per draw and unit.
    sd : ndarray, shape (S, N)
        Posterior SD per draw and unit.
    theta_mean : ndarray, shape (N, 1)
        Posterior mean capability per unit (averaged over draws).

    Examples
    --------
    >>> mean, sd, theta_mean = one_factor_capability(draws, design)  # doctest: +SKIP
    >>> theta = mean + sd[..., None] * rng.standard_normal(sd.shape)[..., None]  # doctest: +SKIP
    """
    if draws.values["slope_mu"].shape[-1] != 1:
        raise ValueError("one_factor_capability needs a one-factor fit; use conjugate_capability.")
    y, J, se2 = _cell_arrays(design, len(draws.proxies))
    mean, sd, theta_mean = _one_factor_gaussian(draws, design, y=y, J=J, se2=se2)
    return mean.T[..., None], sd.T, theta_mean[:, None]


def _one_factor_gaussian(
    draws: ParamDraws, design: Design, *, y: np.ndarray, J: np.ndarray, se2: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and SD (N, S), rows of units, and mean over draws (N,) of the capability.

    The prior (as :func:`_prior` gives it) and the proxies' evidence meet per unit in one
    compiled loop (:func:`~bayesproxy.model.kernels.one_factor_posterior`).
    """
    v = draws.values
    return one_factor_posterior(
        **_one_factor_prior(draws, design),
        cells={"y": y, "inv_j": 1.0 / J, "se2": se2},
        measurement={
            "psi2": v["unique_sd"] ** 2,
            "sig2": v["noise_sd"] ** 2,
            "lam": v["loading"][..., 0],
            "mu": v["proxy_intercept"],
        },
    )


def _one_factor_prior(draws: ParamDraws, design: Design) -> dict[str, dict[str, np.ndarray]]:
    """Return the terms of :func:`_prior` with one factor: per-unit indices, per-draw tables.

    A family or run the fit has not seen points at an extra last row of its table: a zero
    intercept, and for the slope the population's ``slope_mu``; its flag adds the
    population variance, as in :func:`_prior`.
    """
    v = draws.values
    S = draws.n
    f_idx = _family_index(draws, design.family)
    new_f = f_idx < 0
    f_idx[new_f] = len(draws.families)
    zero = np.zeros((1, S))
    if "run_intercept" in v:
        r_idx = _level_index(draws.runs, np.asarray(design.run))
        new_r = r_idx < 0
        r_idx[new_r] = len(draws.runs)
        a_run = np.vstack([v["run_intercept"][..., 0].T, zero])
        run_var = v["run_intercept_sd"][:, 0] ** 2
    else:
        r_idx, new_r = np.zeros(len(f_idx), dtype=np.int64), np.zeros(len(f_idx), dtype=bool)
        a_run, run_var = zero, np.zeros(S)
    has_x = np.isfinite(design.x)
    x = np.nan_to_num(design.x, nan=0.0)
    return {
        "unit": {
            "fam": f_idx,
            "run": r_idx,
            "x": x,
            "x2": np.where(has_x, x**2, 1.0),  # unknown compute: x ~ N(0, 1), x^2 -> 1
            "no_x": (~has_x).astype(float),
            "new_f": new_f.astype(float),
            "new_r": new_r.astype(float),
        },
        "prior": {
            "a_fam": np.vstack([v["family_intercept"][..., 0].T, zero]),
            "b_fam": np.vstack([v["family_slope"][..., 0].T, v["slope_mu"][:, 0][None]]),
            "a_run": a_run,
            "unit_var": v["unit_sd"][:, 0] ** 2,
            "fam_var": v["family_intercept_sd"][:, 0] ** 2,
            "slope_var": v["family_slope_sd"][:, 0] ** 2,
            "run_var": run_var,
        },
    }


def unit_block_noise(
    rng: np.random.Generator, n_draws: int, n_units: int
) -> Callable[[slice], np.ndarray]:
    """Draw standard normal noise (units, draws) block by block of units.

    Returns a function of a block of :func:`~bayesproxy.threads.row_blocks` (over units)
    giving that block's noise, a row per unit, from a child generator spawned from ``rng``
    per block, so the noise depends on the seed and the number of units only, whatever
    thread draws it.

    Examples
    --------
    >>> from bayesproxy.threads import row_blocks
    >>> noise = unit_block_noise(np.random.default_rng(0), 3, 2000)
    >>> [noise(rows).shape for rows in row_blocks(2000)]
    [(1024, 3), (976, 3)]
    """
    children = block_generators(rng, n_units)
    return lambda rows: children[rows.start].standard_normal((rows.stop - rows.start, n_draws))


def distances(theta_mean: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mahalanobis distance of units from the training units, and the excess beyond them.

    Parameters
    ----------
    theta_mean : ndarray, shape (N, D)
        Posterior mean capability of the units to place.
    reference : ndarray, shape (M, D)
        Posterior mean capability of the training units (those with an observed target).

    Returns
    -------
    distance : ndarray, shape (N,)
        In training standard deviations (Mahalanobis distance from the training mean).
    excess : ndarray, shape (N,)
        How far the unit lies outside the training units, in training SDs; zero inside,
        growing outside. One factor: beyond the largest or below the smallest training
        capability (the training units of an emergent target are mostly small or early
        ones, so their cloud is lopsided, and a radius around their mean would call a unit
        above every one of them "inside" as long as it is closer to the mean than the
        smallest unit). Several factors: ``max(0, distance - r)`` with ``r`` the largest
        distance of a training unit. A unit is flagged as an extrapolation when
        ``excess > 0``.

    Examples
    --------
    A unit above every training unit is outside, though nearer their mean than the lowest:

    >>> d, excess = distances(np.array([[0.25], [1.0]]), np.array([[-3.0], [0.0], [0.5]]))
    >>> d.round(2).tolist(), excess.round(2).tolist()
    ([0.57, 0.97], [0.0, 0.26])
    """
    ref = np.asarray(reference, float).reshape(len(reference), -1)
    pts = np.asarray(theta_mean, float).reshape(len(theta_mean), -1)
    center = ref.mean(axis=0)
    cov = np.atleast_2d(np.cov(ref, rowvar=False)) if len(ref) > 1 else np.eye(ref.shape[1])
    cov = cov + 1e-9 * np.eye(cov.shape[0])
    inv = np.linalg.inv(cov)

    def mahal(a: np.ndarray) -> np.ndarray:
        d = a - center
        return np.sqrt(np.maximum(np.einsum("nd,de,ne->n", d, inv, d), 0.0))

    dist = mahal(pts)
    if ref.shape[1] == 1 and len(ref):
        sd = float(np.sqrt(cov[0, 0]))
        above = (pts[:, 0] - ref[:, 0].max()) / sd
        below = (ref[:, 0].min() - pts[:, 0]) / sd
        return dist, np.maximum(np.maximum(above, below), 0.0)
    radius = float(mahal(ref).max()) if len(ref) else 0.0
    return dist, np.maximum(dist - radius, 0.0)


def target_draws(
    draws: ParamDraws,
    theta: np.ndarray,
    *,
    chance: float,
    excess: np.ndarray,
    extrapolation_scale: float,
    rng: np.random.Generator,
    reference_cov: np.ndarray | None = None,
    delta: np.ndarray | None = None,
    theta_sd: np.ndarray | None = None,
) -> np.ndarray:
    """Draws of each unit's true target score, shape (N, S), inside [chance, ceiling].

    Parameters
    ----------
    draws : ParamDraws
    theta : ndarray, shape (S, N, D)
    chance : float
        The target's chance floor.
    excess : ndarray, shape (N,)
        Distance beyond the training units (see :func:`distances`).
    extrapolation_scale : float
        Extra link SD per training SD of excess, in units of ``link_sd``.
    reference_cov : ndarray, shape (D, D), optional
        Covariance of the training units' capability; ``link_sd = sqrt(beta' C beta)`` per
        draw (1 when not given).
    rng : numpy.random.Generator
    delta : ndarray, shape (S, N), optional
        Known link discrepancies (posterior draws for units with an observed target); NaN
        entries are drawn from the predictive distribution.
    theta_sd : ndarray, shape (S, N), optional
        One factor: ``theta`` is not a draw but the mean of each unit's Gaussian capability,
        with this SD (:func:`one_factor_capability`). Its noise and the link discrepancy's
        are then one normal, ``sqrt((beta theta_sd)^2 + sd^2)`` times it: the same
        distribution of the score from half the normal draws.

    Returns
    -------
    ndarray, shape (N, S)
    """
    v = draws.values
    S, N = theta.shape[0], theta.shape[1]
    if reference_cov is None:
        link_sd = np.ones(draws.n)
    else:
        cov = np.atleast_2d(reference_cov)
        link_sd = np.sqrt(np.einsum("sd,de,se->s", v["beta"], cov, v["beta"]))
    excess = np.asarray(excess, float)
    link = {
        "alpha": v["alpha"],
        "beta": v["beta"],
        "disc_var": v["discrepancy_sd"] ** 2,
        "extra_sd": extrapolation_scale * link_sd,
        "ceiling": v["ceiling"],
    }
    # rows of units: no copy for the one-factor conjugate update's (S, N, 1) view of (N, S)
    theta_rows = np.ascontiguousarray(np.moveaxis(theta, 0, 1))
    known = None if delta is None else np.ascontiguousarray(np.asarray(delta, float).T)
    if theta_sd is not None and theta.shape[2] != 1:
        raise ValueError("theta_sd needs one factor; pass capability draws as theta instead.")
    spread = None if theta_sd is None else np.ascontiguousarray(np.asarray(theta_sd, float).T)
    out = np.empty((N, S))  # callers read rows of units
    noise = unit_block_noise(rng, S, N)

    def block(rows: slice) -> None:
        true_score_draws(
            out[rows],
            theta_rows[rows],
            noise(rows),
            link=link,
            excess=excess[rows],
            chance=chance,
            delta=None if known is None else known[rows],
            theta_sd=None if spread is None else spread[rows],
        )

    for_row_blocks(block, N)
    return out
