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
['alignment', 'alpha', 'beta']
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from bayesproxy.model.design import ACCURACY_EPS, Design

__all__ = ["Hierarchy", "build_model", "hierarchy"]


@dataclass(frozen=True)
class Hierarchy:
    """Integer codes of family and run per unit (the levels the model pools over)."""

    families: list[str]
    runs: list[str]
    family_idx: np.ndarray
    run_idx: np.ndarray
    use_runs: bool


def hierarchy(design: Design) -> Hierarchy:
    """Code families and runs; run intercepts are used only when some run has >1 unit.

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
    runs, run_idx = np.unique(design.run, return_inverse=True)
    return Hierarchy(
        families=[str(f) for f in families],
        runs=[str(r) for r in runs],
        family_idx=family_idx,
        run_idx=run_idx,
        use_runs=len(runs) < len(design.units),
    )


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
    Identification: the capability has unit population variance (split by a Dirichlet
    between compute, family, run and unit deviations) and population mean zero;
    with one factor the target slope ``beta`` is positive (capability is what raises the
    target); with D > 1 the loading matrix is lower triangular with a positive diagonal over
    the first D proxies and ``beta`` is free.

    Examples
    --------
    See the module docstring.
    """
    D = int(n_factors)
    K = len(design.proxies)
    h = hierarchy(design)
    coords = {
        "unit": design.units.tolist(),
        "proxy": list(design.proxies),
        "factor": list(range(D)),
        "family": h.families,
        "cell": np.arange(len(design.cell_unit)),
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
    has_x = np.isfinite(design.x)
    multi = design.cell_n >= 2
    t_units = np.unique(design.target_unit)

    # Every array enters as pm.Data, so the compiled graph depends on the table's shapes
    # only: a second table (or simulation) reuses the compiled sampler instead of paying
    # numba compilation again.
    with pm.Model(coords=coords) as model:
        x = pm.Data("compute_x", np.nan_to_num(design.x, nan=0.0), dims="unit")
        no_x = pm.Data("compute_unknown", (~has_x).astype(float), dims="unit")
        fam_idx = pm.Data("family_index", h.family_idx.astype("int64"), dims="unit")
        run_idx = pm.Data("run_index", h.run_idx.astype("int64"), dims="unit")
        ci = pm.Data("cell_unit", design.cell_unit.astype("int64"), dims="cell")
        ck = pm.Data("cell_proxy", design.cell_proxy.astype("int64"), dims="cell")
        J = pm.Data("cell_replicates", design.cell_n, dims="cell")
        se2 = pm.Data("cell_se2", design.cell_se2, dims="cell")
        multi_idx = pm.Data("multi_cell", np.nonzero(multi)[0].astype("int64"))
        t_unit_idx = pm.Data("target_unit_index", t_units.astype("int64"), dims="target_unit")
        t_pos = pm.Data(
            "target_cell_index",
            np.searchsorted(t_units, design.target_unit).astype("int64"),
            dims="target_cell",
        )
        reps = pm.Data("proxy_replicates", design.replicates_per_proxy, dims="proxy")
        # --- capability hierarchy (non-centred) -----------------------------------------
        # The capability's scale is fixed by giving it unit variance across the population
        # and splitting that variance between compute, family, run and unit deviations with
        # a Dirichlet: loadings then live on the proxies' standardised scale, which keeps the
        # posterior free of the scale ridges a fixed unit-level variance creates.
        parts = ["compute", "family", "run", "unit"]
        if not has_x.any():
            parts.remove("compute")
        if not h.use_runs:
            parts.remove("run")
        share = pm.Dirichlet(
            "variance_share",
            a=np.full(len(parts), priors["variance_share_concentration"]),
            dims=("factor", "component"),
        )
        sd = {name: pt.sqrt(share[:, j]) for j, name in enumerate(parts)}
        zero = pt.zeros(D)
        fam_sd = pm.Deterministic("family_intercept_sd", sd["family"], dims="factor")
        # zero-sum: a common shift of all intercepts would trade off against the proxy
        # intercepts mu_k (a ridge the sampler crawls along); the population mean is 0
        fam_z = pm.ZeroSumNormal("family_intercept_z", dims=("family", "factor"), n_zerosum_axes=1)
        a_family = pm.Deterministic("family_intercept", fam_sd * fam_z, dims=("family", "factor"))
        slope_mu = pm.Deterministic("slope_mu", sd.get("compute", zero), dims="factor")
        rel_sd = pm.HalfNormal("family_slope_spread", priors["family_slope_spread"])
        slope_z = pm.Normal("family_slope_z", 0.0, 1.0, dims=("family", "factor"))
        pm.Deterministic("family_slope_sd", slope_mu * rel_sd, dims="factor")
        b_family = pm.Deterministic(
            "family_slope", slope_mu * (1.0 + rel_sd * slope_z), dims=("family", "factor")
        )
        loc = a_family[fam_idx] + b_family[fam_idx] * x[:, None]
        if h.use_runs:
            run_sd = pm.Deterministic("run_intercept_sd", sd["run"], dims="factor")
            run_z = pm.ZeroSumNormal("run_intercept_z", dims=("run", "factor"), n_zerosum_axes=1)
            a_run = pm.Deterministic("run_intercept", run_sd * run_z, dims=("run", "factor"))
            loc = loc + a_run[run_idx]
        unit_sd = pm.Deterministic("unit_sd", sd["unit"], dims="factor")
        # unknown compute: x ~ N(0, 1) integrated out adds b_f^2 to the innovation variance
        innov_sd = pt.sqrt(unit_sd**2 + no_x[:, None] * b_family[fam_idx] ** 2)
        eta = pm.Normal("capability_z", 0.0, 1.0, dims=("unit", "factor"))
        theta = pm.Deterministic("capability", loc + innov_sd * eta, dims=("unit", "factor"))

        # --- measurement model ------------------------------------------------------------
        mu = pm.Normal("proxy_intercept", 0.0, priors["proxy_intercept_sd"], dims="proxy")
        if D == 1:
            loading = pm.Normal("loading", 0.0, priors["loading_sd"], dims=("proxy", "factor"))
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
        noise_z = pm.Normal("noise_z", 0.0, 1.0, dims="proxy")
        sigma = pm.Deterministic("noise_sd", pt.exp(noise_mu + noise_sd * noise_z), dims="proxy")

        rep_var = sigma[ck] ** 2 + se2
        pred = mu[ck] + pt.sum(loading[ck] * theta[ci], axis=1)
        pm.Normal(
            "proxy_obs",
            mu=pred,
            sigma=pt.sqrt(psi[ck] ** 2 + rep_var / J),
            observed=pm.Data("proxy_mean", design.cell_mean, dims="cell"),
            dims="cell",
        )
        if multi.any():
            # floor: identical replicates (ss == 0) would give -inf under chi^2_{J-1}
            ss = np.maximum(design.cell_ss[multi], 1e-8)
            pm.Gamma(
                "proxy_ss",
                alpha=(J[multi_idx] - 1.0) / 2.0,
                beta=1.0 / (2.0 * rep_var[multi_idx]),
                observed=pm.Data("proxy_sum_squares", ss),
            )

        # --- target link -------------------------------------------------------------------
        c_t = design.target_chance
        alpha = pm.Normal("alpha", 0.0, priors["alpha_sd"])
        if D == 1:
            beta = pm.HalfNormal("beta", priors["beta_sd"], dims="factor")
        else:
            beta = pm.Normal("beta", 0.0, priors["beta_sd"], dims="factor")
        if math.isnan(priors["ceiling"]):
            frac = pm.Beta("ceiling_frac", priors["ceiling_a"], priors["ceiling_b"])
            ceiling = pm.Deterministic("ceiling", c_t + (1.0 - c_t) * frac)
        else:
            ceiling = pt.as_tensor(max(priors["ceiling"], c_t + 1e-3))
        lin = alpha + pt.dot(theta, beta)
        pm.Deterministic("target_p", c_t + (ceiling - c_t) * pm.math.sigmoid(lin), dims="unit")
        delta_sd = pm.HalfNormal("discrepancy_sd", priors["discrepancy_sd"])
        delta_z = pm.Normal("discrepancy_z", 0.0, 1.0, dims="target_unit")
        q_units = c_t + (ceiling - c_t) * pm.math.sigmoid(lin[t_unit_idx] + delta_sd * delta_z)
        q = q_units[t_pos]
        if design.likelihood == "binomial":
            n_items = np.round(design.target_n_items).astype("int64")
            k = np.clip(np.round(design.target_score * n_items), 0, n_items).astype("int64")
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
