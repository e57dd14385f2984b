"""The PyMC model of capability, proxies and the emergent target.

Latent capability has a family / run hierarchy over log compute, proxies follow a
linear-Gaussian measurement model, and a bounded sigmoid links capability to the target.

Replicates and the per-cell true-score deviation are marginalised analytically, so the only
latent per-unit quantities are the capability innovations (and, for units with an observed
target, one link-discrepancy term): the replicate mean of cell (i, k) with J replicates is
``N(mu_k + lambda_k' theta_i, psi_k^2 + (sigma_k^2 + se^2) / J)`` and, when J >= 2, the
within-cell sum of squares is ``(sigma_k^2 + se^2) * chi^2_{J-1}``.

Examples
--------
>>> import numpy as np, xarray as xr
>>> from bayesproxy.model.design import build_design
>>> from bayesproxy.model.priors import resolve_priors
>>> rng = np.random.default_rng(0)
>>> ds = xr.Dataset(
...     {"score": (("unit", "task", "replicate"), rng.uniform(0.3, 0.7, (6, 3, 2)))},
...     coords={"unit": list("abcdef"), "task": ["p1", "p2", "t"], "replicate": ["0", "1"]},
... )
>>> model = build_model(build_design(ds, target="t"), priors=resolve_priors(), n_factors=1)
>>> sorted(model.named_vars)[:3]
['alignment', 'alpha', 'alpha_centred']
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from bayesproxy.model.design import ACCURACY_EPS, Design, DesignError

__all__ = [
    "FAMILY_SLOPE_CENTRING",
    "Hierarchy",
    "binomial_counts",
    "build_model",
    "hierarchy",
    "model_coords",
    "noise_split",
    "proxy_grid",
    "run_contrast_basis",
]

#: How far the families' slope deviations are centred, ``w`` in [0, 1] (0: non-centred, 1:
#: centred): the sampler sees ``family_slope_dev ~ N(0, spread**w)`` and a family's slope is
#: ``slope_mu * (1 + spread**(1 - w) * family_slope_dev)`` (Papaspiliopoulos, Roberts and
#: Sköld 2007, "A general framework for the parametrization of hierarchical models"). The
#: model is the same for every ``w``; only the geometry the sampler meets changes (see the
#: comment in :func:`build_model`).
FAMILY_SLOPE_CENTRING = 0.25


@dataclass(frozen=True)
class Hierarchy:
    """Integer codes of family and run per unit (the levels the model pools over)."""

    families: list[str]
    runs: list[str]
    family_idx: np.ndarray
    run_idx: np.ndarray
    run_family: np.ndarray  # family code of each run
    use_runs: bool


def hierarchy(design: Design) -> Hierarchy:
    """Code families and runs; run intercepts only where runs add a level.

    Runs are used when some run has more than one unit and some family more than one run.

    Units with an unknown family (``""``) share one level, ``"(unknown)"``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from bayesproxy.model.design import build_design
    >>> ds = xr.Dataset(
    ...     {"score": (("unit", "task"), np.linspace(0.2, 0.8, 8).reshape(4, 2))},
    ...     coords={"unit": list("abcd"), "task": ["p", "t"]},
    ... )
    >>> hierarchy(build_design(ds, target="t")).use_runs
    False
    """
    fam = np.where(design.family == "", "(unknown)", design.family)
    families, family_idx = np.unique(fam, return_inverse=True)
    # a unit without a run label is a run of its own
    run = np.where(design.run == "", design.units, design.run)
    runs, run_idx = np.unique(run, return_inverse=True)
    run_family = np.zeros(len(runs), dtype="int64")
    run_family[run_idx] = family_idx
    mixed = sorted(
        {str(runs[r]) for r, f in zip(run_idx, family_idx, strict=True) if run_family[r] != f}
    )
    if mixed:
        raise DesignError(
            f"runs {mixed[:5]} hold units of more than one family; runs nest in families.",
            hint="give each run one family (or name the runs apart, e.g. 'family/run').",
        )
    return Hierarchy(
        families=[str(f) for f in families],
        runs=[str(r) for r in runs],
        family_idx=family_idx,
        run_idx=run_idx,
        run_family=run_family,
        # runs add a level only where a run has several units and a family several runs
        # (a family's only run is the family itself)
        use_runs=len(runs) < len(design.units) and len(runs) > len(np.unique(run_family)),
    )


def model_coords(
    design: Design, *, n_factors: int = 1, h: Hierarchy | None = None
) -> dict[str, Any]:
    """Return the coordinates of the model :func:`build_model` builds for ``design``.

    Parameters
    ----------
    design : Design
    n_factors : int, default 1
    h : Hierarchy, optional
        ``hierarchy(design)``, when the caller has it.

    Returns
    -------
    dict
        Dimension name to its labels.

    Examples
    --------
    See the module docstring.
    """
    h = hierarchy(design) if h is None else h
    coords: dict[str, Any] = {
        "unit": design.units.tolist(),
        "proxy": list(design.proxies),
        "factor": list(range(int(n_factors))),
        "family": h.families,
        "target_cell": np.arange(len(design.target_unit)),
        "component": [
            c
            for c, keep in (
                ("compute", bool(np.isfinite(design.x).any())),
                ("family", True),
                ("run", h.use_runs),
                ("unit", True),
            )
            if keep
        ],
        "target_unit": design.units[np.unique(design.target_unit)].tolist(),
    }
    if h.use_runs:
        coords["run"] = h.runs
        coords["run_contrast"] = np.arange(run_contrast_basis(h).shape[1])
    return coords


def build_model(design: Design, *, priors: dict[str, float], n_factors: int = 1) -> pm.Model:
    """Build the hierarchical proxy model for a design.

    Parameters
    ----------
    design : Design
        From :func:`~bayesproxy.model.design.build_design`.
    priors : dict
        From :func:`~bayesproxy.model.priors.resolve_priors`.
    n_factors : int, default 1
        Dimension D of the latent capability.

    Returns
    -------
    pymc.Model

    Notes
    -----
    Identification: with one factor the loadings average 1 (this fixes the capability's
    scale and, since proxies are oriented so that higher is better, its sign), each level of
    the hierarchy (mean slope on compute, family, run, unit) has an SD of its own, and the
    target slope ``beta`` is positive; with D > 1 the capability has unit population
    variance, split by a Dirichlet between those levels, the loading matrix is lower
    triangular with a positive diagonal over the first D proxies and ``beta`` is free. The
    population mean is zero: family effects sum to zero, run effects sum to zero within
    each family. The link intercept is sampled at the mean capability of the units with an
    observed target (``alpha_centred``); ``alpha`` is the intercept at capability 0.

    Examples
    --------
    See the module docstring.
    """
    D = int(n_factors)
    K = len(design.proxies)
    h = hierarchy(design)
    coords = model_coords(design, n_factors=D, h=h)
    if h.use_runs:
        run_basis = run_contrast_basis(h)
    has_x = np.isfinite(design.x)
    t_units = np.unique(design.target_unit)

    # Every array enters as pm.Data, so the compiled graph depends on the table's shapes
    # only: a second table (or simulation) reuses the compiled sampler instead of paying
    # numba compilation again.
    with pm.Model(coords=coords) as model:
        x = pm.Data("compute_x", np.nan_to_num(design.x, nan=0.0), dims="unit")
        no_x = pm.Data("compute_unknown", (~has_x).astype(float), dims="unit")
        fam_idx = pm.Data("family_index", h.family_idx.astype("int64"), dims="unit")
        run_idx = pm.Data("run_index", h.run_idx.astype("int64"), dims="unit")
        g = proxy_grid(design)
        y = pm.Data("proxy_mean", g["mean"], dims=("unit", "proxy"))
        mask = pm.Data("proxy_observed", g["observed"], dims=("unit", "proxy"))
        J = pm.Data("proxy_count", g["count"], dims=("unit", "proxy"))
        se2 = pm.Data("proxy_se2", g["se2"], dims=("unit", "proxy"))
        half_dof = pm.Data("proxy_half_dof", g["half_dof"], dims=("unit", "proxy"))
        ss = pm.Data("proxy_sum_squares", g["sum_squares"], dims=("unit", "proxy"))
        t_unit_idx = pm.Data("target_unit_index", t_units.astype("int64"), dims="target_unit")
        t_pos = pm.Data(
            "target_cell_index",
            np.searchsorted(t_units, design.target_unit).astype("int64"),
            dims="target_cell",
        )
        reps = pm.Data("proxy_replicates", design.replicates_per_proxy, dims="proxy")
        # --- capability hierarchy -------------------------------------------------------
        # One factor: the scale of the capability is fixed by the loadings, whose mean is 1
        # (effects coding), so each level of the hierarchy gets an SD of its own (the mean
        # slope on compute, family, run, unit), a priori independent. Fixing the population
        # variance at 1 instead leaves the scale to the realised spread of a handful of
        # family and run effects, a ridge between the loadings, beta and the variance split;
        # and a total SD split by a Dirichlet ties the SDs the data pin (unit, slope) to the
        # one a handful of families leaves vague (total SD and shares correlated 0.8 on the
        # reference table, divergences where the family SD is large). Gamma(2) priors keep
        # the SDs off 0, where centred effects of a few families would funnel. Several factors
        # keep unit variance (their loadings are free), split with a Dirichlet.
        parts = ["compute", "family", "run", "unit"]
        if not has_x.any():
            parts.remove("compute")
        if not h.use_runs:
            parts.remove("run")
        if D == 1:
            comp_sd = pm.Gamma(
                "component_sd",
                alpha=priors["component_sd_shape"],
                beta=priors["component_sd_shape"] / priors["component_sd"],
                dims=("factor", "component"),
            )
            scale = pm.Deterministic(
                "capability_sd", pt.sqrt(pt.sum(comp_sd**2, axis=1)), dims="factor"
            )
            pm.Deterministic(
                "variance_share", comp_sd**2 / scale[:, None] ** 2, dims=("factor", "component")
            )
            sd = {name: comp_sd[:, j] for j, name in enumerate(parts)}
        else:
            share = pm.Dirichlet(
                "variance_share",
                a=np.full(len(parts), priors["variance_share_concentration"]),
                dims=("factor", "component"),
            )
            sd = {name: pt.sqrt(share[:, j]) for j, name in enumerate(parts)}
        # Family and run intercepts are centred: every family and run holds several units
        # whose capability dozens of proxies measure, so the data, not the population SD, pin
        # each down (the non-centred form then ties them to the hierarchy's SDs).
        # Zero-sum: a common shift of all intercepts would trade off against the proxy
        # intercepts mu_k; the population mean is 0. ZeroSumNormal sums to zero over its
        # *last* axes, hence (factor, family).
        fam_sd = pm.Deterministic("family_intercept_sd", sd["family"], dims="factor")
        fam_effect = pm.ZeroSumNormal(
            "family_effect",
            sigma=fam_sd[:, None],
            dims=("factor", "family"),
            n_zerosum_axes=1,
        )
        a_family = pm.Deterministic("family_intercept", fam_effect.T, dims=("family", "factor"))
        if "compute" in parts:
            rel_sd = pm.HalfNormal("family_slope_spread", priors["family_slope_spread"])
            slope_mu = pm.Deterministic("slope_mu", sd["compute"], dims="factor")
            pm.Deterministic("family_slope_sd", slope_mu * rel_sd, dims="factor")
            # Partially non-centred: a handful of families rarely pins their spread down, so
            # its posterior spans orders of magnitude. Centred slopes funnel where the spread
            # is small, non-centred ones where it is large and the slopes are well measured
            # (divergences on the reference tables); a quarter of the way to centred, neither
            # end narrows as fast (w = 0.5 still left divergences on small tables). Zero-sum,
            # as the intercepts: slope_mu is then the families' mean slope, not a level that a
            # common shift of every deviation could stand in for.
            w = FAMILY_SLOPE_CENTRING
            slope_dev = pm.ZeroSumNormal(
                "family_slope_dev",
                sigma=rel_sd**w,
                dims=("factor", "family"),
                n_zerosum_axes=1,
            )
            b_family = pm.Deterministic(
                "family_slope",
                slope_mu * (1.0 + rel_sd ** (1.0 - w) * slope_dev.T),
                dims=("family", "factor"),
            )
        else:  # no unit has a known compute: no slopes
            b_family = pt.zeros((len(h.families), D))
        loc = a_family[fam_idx] + b_family[fam_idx] * x[:, None]
        if h.use_runs:
            # Runs nest in families. Their effects sum to zero within each family (iid normal
            # effects restricted to that subspace, written in an orthonormal basis of it), so
            # a family's intercept is the mean level of its runs: a family shift traded
            # against its runs' effects, or a global shift of the run levels against the
            # proxy intercepts, would otherwise be ridges the sampler crawls along.
            run_sd = pm.Deterministic("run_intercept_sd", sd["run"], dims="factor")
            basis = pm.Data("run_contrast_basis", run_basis, dims=("run", "run_contrast"))
            contrast = pm.Normal(
                "run_effect_contrast", 0.0, run_sd, dims=("run_contrast", "factor")
            )
            a_run = pm.Deterministic(
                "run_intercept", pt.dot(basis, contrast), dims=("run", "factor")
            )
            loc = loc + a_run[run_idx]
        unit_sd = pm.Deterministic("unit_sd", sd["unit"], dims="factor")
        # unknown compute: x ~ N(0, 1) integrated out adds b_f^2 to the innovation variance
        innov_sd = pt.sqrt(unit_sd**2 + no_x[:, None] * b_family[fam_idx] ** 2)

        # --- measurement model ------------------------------------------------------------
        mu = pm.Normal("proxy_intercept", 0.0, priors["proxy_intercept_sd"], dims="proxy")
        if D == 1:
            # Loadings average 1 (effects coding): this sets the capability's scale and its
            # sign. Proxies are oriented so that higher is better, so the capability is what
            # raises them on average; beta > 0 alone cannot exclude the mirror image
            # (theta, lambda) -> (-theta, -lambda) when the target is flat in training.
            lam_dev = pm.ZeroSumNormal(
                "loading_deviation",
                sigma=priors["loading_sd"],
                dims=("factor", "proxy"),
                n_zerosum_axes=1,
            )
            loading = pm.Deterministic("loading", (1.0 + lam_dev).T, dims=("proxy", "factor"))
        else:
            raw = pm.Normal("loading_raw", 0.0, priors["loading_sd"], dims=("proxy", "factor"))
            rows = np.arange(K)[:, None]
            cols = np.arange(D)[None, :]
            lower = (rows >= cols).astype(float)
            diag = rows == cols
            loading = pm.Deterministic(
                "loading",
                pt.where(diag, pt.abs(raw), raw) * lower,
                dims=("proxy", "factor"),
            )
        psi = pm.HalfNormal("unique_sd", priors["unique_sd"], dims="proxy")
        noise_mu = pm.Normal("noise_log_mu", priors["noise_log_mu"], priors["noise_log_mu_sd"])
        noise_sd = pm.HalfNormal("noise_log_sd", priors["noise_log_sd"])
        sigma = pm.Deterministic(
            "noise_sd", pt.exp(_log_noise(design, noise_mu, noise_sd)), dims="proxy"
        )

        # Proxies enter on a dense (unit, proxy) grid with a mask: every term is then a
        # broadcast or a matrix-vector product instead of gathers and scatters over cells,
        # which makes each gradient several times cheaper.
        rep_var = sigma[None, :] ** 2 + se2
        cell_var = psi[None, :] ** 2 + rep_var / J
        eta = pm.Normal("capability_z", 0.0, 1.0, dims=("unit", "factor"))
        if D == 1:
            # the link's slope and discrepancy SD enter the capability's parametrisation
            # (see _marginal_capability)
            beta = pm.HalfNormal("beta", priors["beta_sd"], dims="factor")
            delta_sd = pm.HalfNormal("discrepancy_sd", priors["discrepancy_sd"])
            link_z = pm.Normal("link_z", 0.0, 1.0, dims="target_unit")
            theta, delta_z = _marginal_capability(
                y,
                mask,
                mu,
                loading[:, 0],
                cell_var,
                loc[:, 0],
                innov_sd[:, 0],
                eta,
                link=(beta[0], delta_sd, link_z, t_unit_idx),
            )
        else:
            theta = pm.Deterministic("capability", loc + innov_sd * eta, dims=("unit", "factor"))
            resid = (y - mu[None, :] - pt.dot(theta, loading.T)) * mask
            pm.Potential(
                "proxy_loglik",
                -0.5 * pt.sum(mask * pt.log(2.0 * np.pi * cell_var) + resid**2 / cell_var),
            )
        # within-cell sums of squares: (sigma_k^2 + se^2) chi^2_{J-1}, i.e. a Gamma with shape
        # (J-1)/2 and rate 1/(2 rep_var), up to terms that depend on the data alone
        pm.Potential(
            "proxy_replicate_loglik",
            -pt.sum(half_dof * pt.log(2.0 * rep_var) + ss / (2.0 * rep_var)),
        )

        # --- target link -------------------------------------------------------------------
        c_t = design.target_chance
        if D > 1:
            beta = pm.Normal("beta", 0.0, priors["beta_sd"], dims="factor")
        # The intercept is taken at the mean capability of the units with an observed target
        # (as Bambi centres predictors): those units are often the small, early ones, far
        # from the capability's population mean, and an intercept at 0 would then trade off
        # against the slope along a narrow ridge.
        alpha_c = pm.Normal("alpha_centred", 0.0, priors["alpha_sd"])
        alpha = pm.Deterministic(
            "alpha", alpha_c - pt.dot(pt.mean(theta[t_unit_idx], axis=0), beta)
        )
        if math.isnan(priors["ceiling"]):
            frac = pm.Beta("ceiling_frac", priors["ceiling_a"], priors["ceiling_b"])
            ceiling = pm.Deterministic("ceiling", c_t + (1.0 - c_t) * frac)
        else:
            ceiling = pt.as_tensor(max(priors["ceiling"], c_t + 1e-3))
        lin = alpha + pt.dot(theta, beta)
        pm.Deterministic("target_p", c_t + (ceiling - c_t) * pm.math.sigmoid(lin), dims="unit")
        if D > 1:
            delta_sd = pm.HalfNormal("discrepancy_sd", priors["discrepancy_sd"])
            delta_z = pm.Normal("discrepancy_z", 0.0, 1.0, dims="target_unit")
        q_units = c_t + (ceiling - c_t) * pm.math.sigmoid(lin[t_unit_idx] + delta_sd * delta_z)
        q = q_units[t_pos]
        if design.likelihood == "binomial":
            n_items, k = binomial_counts(design)
            pm.Binomial(
                "target_obs",
                n=pm.Data("target_n_items", n_items, dims="target_cell"),
                p=q,
                observed=pm.Data("target_successes", k, dims="target_cell"),
                dims="target_cell",
            )
        else:
            kappa = pm.LogNormal(
                "concentration", priors["concentration_log_mu"], priors["concentration_log_sd"]
            )
            # scores exactly 0 or 1 have zero Beta density: clipped at the door (documented)
            y = np.clip(design.target_score, ACCURACY_EPS / 10, 1.0 - ACCURACY_EPS / 10)
            pm.Beta(
                "target_obs",
                alpha=q * kappa,
                beta=(1.0 - q) * kappa,
                observed=pm.Data("target_score", y, dims="target_cell"),
                dims="target_cell",
            )

        # --- named proxy properties ---------------------------------------------------------
        centered = theta - pt.mean(theta, axis=0)
        cov = pt.dot(centered.T, centered) / (len(design.units) - 1)
        cov_lb = pt.dot(loading, pt.dot(cov, beta))  # Cov(true score_k, target latent)
        var_true = pt.sum(pt.dot(loading, cov) * loading, axis=1) + psi**2
        var_link = pt.dot(beta, pt.dot(cov, beta))
        pm.Deterministic("alignment", pt.abs(cov_lb) / pt.sqrt(var_true * var_link), dims="proxy")
        pm.Deterministic("stability", 1.0 - sigma**2 / (var_true + sigma**2), dims="proxy")
        raw_w = pt.dot(loading, beta) / (psi**2 + sigma**2 / reps)
        pm.Deterministic("weight", raw_w / pt.sum(pt.abs(raw_w)), dims="proxy")
    return model


def _marginal_capability(y, mask, mu, lam, cell_var, loc, prior_sd, z, *, link):
    """One-factor capability with the proxies' likelihood integrated over it.

    Given the parameters, ``theta_i ~ N(loc_i, s_i^2)`` and the cell means are
    ``N(mu_k + lam_k theta_i, v_c)``, so both the marginal likelihood of unit i's proxies and
    ``theta_i | proxies ~ N(m_i, 1 / P_i)`` are closed form (``P_i = 1/s_i^2 +
    sum_c lam^2 / v_c``). The model adds the former as a potential and writes
    ``theta_i = m_i + u_i / sqrt(P_i)`` with ``u_i ~ N(0, 1)``: an exact reparametrisation in
    which u is a priori independent of everything the proxies inform, so the sampler only
    has to learn what the target adds. Units informed by dozens of proxies (where the usual
    non-centred form has strong posterior correlations) and units with none (u then stays
    N(0, 1)) both sample easily.

    For a unit with an observed target the link adds ``beta * u_i / sqrt(P_i) + tau *
    delta_i`` (``delta_i ~ N(0, 1)``, tau the discrepancy SD): only the combination
    ``omega_i * zeta_i`` with ``omega_i = sqrt(beta^2 / P_i + tau^2)`` reaches the target, and
    sampling u_i and delta_i separately leaves a ridge along which they trade off (the
    slowest-mixing direction of the model: ``discrepancy_sd`` had the lowest ESS). Those two
    are therefore sampled in rotated coordinates, ``zeta_i = (a u_i + tau delta_i) / omega_i``
    (``link_z``, what the target sees) and ``e_i = (tau u_i - a delta_i) / omega_i``
    (``capability_z`` of that unit), with ``a = beta / sqrt(P_i)``: an orthogonal rotation at
    given parameters, so both stay independent N(0, 1) and the model is unchanged.

    Returns
    -------
    theta, delta_z
        The capability (a ``pm.Deterministic``, units x 1) and the link discrepancy's
        standard-normal innovations (``discrepancy_z``, a ``pm.Deterministic``).
    """
    beta, tau, zeta, t_idx = link
    r = (y - mu[None, :] - lam[None, :] * loc[:, None]) * mask
    prec_c = mask / cell_var
    precision = 1.0 / prior_sd**2 + pt.dot(prec_c, lam**2)
    b = pt.dot(r * prec_c, lam)
    pm.Potential(
        "proxy_marginal",
        -0.5 * pt.sum(mask * pt.log(2.0 * np.pi * cell_var) + r**2 * prec_c)
        + pt.sum(0.5 * b**2 / precision - 0.5 * pt.log(prior_sd**2 * precision)),
    )
    a = beta / pt.sqrt(precision[t_idx])
    omega = pt.sqrt(a**2 + tau**2)
    e = z[t_idx, 0]
    u = pt.set_subtensor(z[:, 0][t_idx], (a * zeta + tau * e) / omega)
    delta_z = pm.Deterministic("discrepancy_z", (tau * zeta - a * e) / omega, dims="target_unit")
    theta = loc + b / precision + u / pt.sqrt(precision)
    return pm.Deterministic("capability", theta[:, None], dims=("unit", "factor")), delta_z


#: Replicate degrees of freedom from which a task's noise SD is data-dominated.
STRONG_NOISE_DOF = 20


def _log_noise(design: Design, mean, sd):
    """Log replicate-noise SD per proxy, centred where replicates pin it down.

    A task with many replicated cells has its sigma_k fixed by the within-cell sums of
    squares, and a non-centred ``mean + sd * z`` would then tie ``z`` to the population
    parameters (a funnel the sampler crawls along); a task with few or no replicates is the
    opposite case. Each task gets the parametrisation its data call for; the prior is the
    same ``log sigma_k ~ N(mean, sd)`` either way.
    """
    strong, weak = noise_split(design)
    log_sigma = pt.zeros(len(design.proxies))
    if len(strong):
        direct = pm.Normal("noise_log_sd_centred", mean, sd, shape=len(strong))
        log_sigma = pt.set_subtensor(log_sigma[strong], direct)
    if len(weak):
        z = pm.Normal("noise_z", 0.0, 1.0, shape=len(weak))
        log_sigma = pt.set_subtensor(log_sigma[weak], mean + sd * z)
    return log_sigma


def run_contrast_basis(h: Hierarchy) -> np.ndarray:
    """Orthonormal basis of the run effects that sum to zero within each family.

    Returns
    -------
    ndarray, shape (runs, runs - families with runs)
        Column blocks per family; a family with one run contributes no column.

    Examples
    --------
    >>> h = Hierarchy(
    ...     families=["f", "g"], runs=["a", "b", "c"], family_idx=np.array([0, 0, 1]),
    ...     run_idx=np.array([0, 1, 2]), run_family=np.array([0, 0, 1]), use_runs=True,
    ... )
    >>> np.round(run_contrast_basis(h), 3).tolist()
    [[0.707], [-0.707], [0.0]]
    """
    columns = []
    for f in np.unique(h.run_family):
        members = np.nonzero(h.run_family == f)[0]
        n = len(members)
        if n < 2:
            continue
        block = np.zeros((len(h.runs), n - 1))
        block[members] = _helmert(n)
        columns.append(block)
    if not columns:
        return np.zeros((len(h.runs), 0))
    return np.hstack(columns)


def _helmert(n: int) -> np.ndarray:
    """Normalised Helmert contrasts: an explicit orthonormal basis of zero-sum n-vectors."""
    out = np.zeros((n, n - 1))
    for j in range(1, n):
        out[:j, j - 1] = 1.0 / np.sqrt(j * (j + 1))
        out[j, j - 1] = -j / np.sqrt(j * (j + 1))
    return out


def binomial_counts(design: Design) -> tuple[np.ndarray, np.ndarray]:
    """Item counts and successes of the target's cells (scores rounded to whole items).

    Examples
    --------
    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> d = SimpleNamespace(target_n_items=np.array([400.0]), target_score=np.array([0.2501]))
    >>> [a.tolist() for a in binomial_counts(d)]
    [[400], [100]]
    """
    n_items = np.round(design.target_n_items).astype("int64")
    return n_items, np.clip(np.round(design.target_score * n_items), 0, n_items).astype("int64")


def proxy_grid(design: Design) -> dict[str, np.ndarray]:
    """Lay the design's proxy cells on a dense (unit, proxy) grid, zero where unobserved.

    Returns
    -------
    dict of str to ndarray
        ``mean``, ``observed`` (1/0), ``count`` (replicates; 1 where unobserved so variances
        stay finite), ``se2``, ``half_dof`` ((J - 1) / 2 for cells with J >= 2) and
        ``sum_squares`` (floored at 1e-8: identical replicates would give -inf under
        chi^2_{J-1}), each of shape (units, proxies).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from bayesproxy.model.design import build_design
    >>> ds = xr.Dataset(
    ...     {"score": (("unit", "task"), np.linspace(0.2, 0.8, 8).reshape(4, 2))},
    ...     coords={"unit": list("abcd"), "task": ["p", "t"]},
    ... )
    >>> proxy_grid(build_design(ds, target="t"))["observed"].shape
    (4, 1)
    """
    shape = (design.n_units, len(design.proxies))
    at = (design.cell_unit, design.cell_proxy)
    grid = {name: np.zeros(shape) for name in ("mean", "observed", "se2", "half_dof")}
    grid["count"] = np.ones(shape)
    grid["sum_squares"] = np.zeros(shape)
    grid["mean"][at] = design.cell_mean
    grid["observed"][at] = 1.0
    grid["count"][at] = design.cell_n
    grid["se2"][at] = design.cell_se2
    multi = design.cell_n >= 2
    grid["half_dof"][at] = np.where(multi, (design.cell_n - 1.0) / 2.0, 0.0)
    grid["sum_squares"][at] = np.where(multi, np.maximum(design.cell_ss, 1e-8), 0.0)
    return grid


def noise_split(design: Design) -> tuple[np.ndarray, np.ndarray]:
    """Return the indices of the proxies whose noise SD is centred (strong) and non-centred (weak).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from bayesproxy.model.design import build_design
    >>> ds = xr.Dataset(
    ...     {"score": (("unit", "task"), np.linspace(0.2, 0.8, 8).reshape(4, 2))},
    ...     coords={"unit": list("abcd"), "task": ["p", "t"]},
    ... )
    >>> [idx.tolist() for idx in noise_split(build_design(ds, target="t"))]
    [[], [0]]
    """
    dof = np.zeros(len(design.proxies))
    np.add.at(dof, design.cell_proxy, np.maximum(design.cell_n - 1.0, 0.0))
    return np.nonzero(dof >= STRONG_NOISE_DOF)[0], np.nonzero(dof < STRONG_NOISE_DOF)[0]
