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

from dataclasses import dataclass

import numpy as np
import xarray as xr

from bayesproxy.model.design import Design

__all__ = [
    "ParamDraws",
    "conjugate_capability",
    "distances",
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


def _prior(draws: ParamDraws, design: Design) -> tuple[np.ndarray, np.ndarray]:
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
        cov[:, no_x, idx, idx] += extra
    return mean, cov


def conjugate_capability(
    draws: ParamDraws,
    design: Design,
    *,
    rng: np.random.Generator,
    chunk: int = 2048,
) -> tuple[np.ndarray, np.ndarray]:
    """Sample each unit's capability given its proxies, one draw per posterior draw.

    Parameters
    ----------
    draws : ParamDraws
    design : Design
        The new table's design, built with the fitted model's scaling.
    rng : numpy.random.Generator
    chunk : int, default 2048
        Units per block (bounds memory at S x chunk x K).

    Returns
    -------
    theta : ndarray, shape (S, N, D)
        Capability draws.
    theta_mean : ndarray, shape (N, D)
        Posterior mean capability per unit (averaged over draws).
    """
    v = draws.values
    prior_mean, prior_cov = _prior(draws, design)
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
        ``max(0, distance - r)`` where ``r`` is the largest distance of a training unit:
        zero inside the training cloud, growing outside it. A unit is flagged as an
        extrapolation when ``excess > 0``.
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

    radius = float(mahal(ref).max()) if len(ref) else 0.0
    dist = mahal(pts)
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

    Returns
    -------
    ndarray, shape (N, S)
    """
    v = draws.values
    lin = v["alpha"][:, None] + np.einsum("snd,sd->sn", theta, v["beta"])
    if reference_cov is None:
        link_sd = np.ones(draws.n)
    else:
        cov = np.atleast_2d(reference_cov)
        link_sd = np.sqrt(np.einsum("sd,de,se->s", v["beta"], cov, v["beta"]))
    extra = extrapolation_scale * link_sd[:, None] * excess[None]
    sd = np.sqrt(v["discrepancy_sd"][:, None] ** 2 + extra**2)
    fresh = sd * rng.standard_normal(lin.shape)
    if delta is not None:
        fresh = np.where(np.isfinite(delta), delta, fresh)
    ceiling = v["ceiling"][:, None]
    q = chance + (ceiling - chance) / (1.0 + np.exp(-(lin + fresh)))
    return np.clip(q, chance, ceiling).T
