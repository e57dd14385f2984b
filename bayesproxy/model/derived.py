"""Named posterior quantities computed from the sampled parameters in NumPy.

The sampler writes only the free parameters (see :mod:`bayesproxy.model.sampling`); this
module rebuilds every ``pm.Deterministic`` of :func:`~bayesproxy.model.build.build_model`
from them with the same formulas, draw by draw. A test checks it against PyMC's own
``compute_deterministics`` so the two can never drift apart.

Examples
--------
>>> from bayesproxy.model.derived import DERIVED
>>> "alignment" in DERIVED and "capability" in DERIVED
True
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from bayesproxy.model.build import (
    FAMILY_SLOPE_CENTRING,
    hierarchy,
    noise_split,
    proxy_grid,
    run_contrast_basis,
)
from bayesproxy.model.design import Design
from bayesproxy.model.kernels import add_proxy_evidence

__all__ = ["DERIVED", "add_derived"]

#: The deterministic quantities rebuilt here (all of the model's ``pm.Deterministic``).
DERIVED = (
    "capability_sd",
    "variance_share",
    "family_intercept_sd",
    "family_intercept",
    "slope_mu",
    "family_slope_sd",
    "family_slope",
    "run_intercept_sd",
    "run_intercept",
    "unit_sd",
    "noise_sd",
    "loading",
    "capability",
    "discrepancy_z",
    "ceiling",
    "alpha",
    "target_p",
    "alignment",
    "stability",
    "weight",
)

_SAMPLE = ("chain", "draw")


def _sigmoid(x: xr.DataArray) -> xr.DataArray:
    return 1.0 / (1.0 + np.exp(-x))


def _noise_sd(post: xr.Dataset, design: Design) -> xr.DataArray:
    strong, weak = noise_split(design)
    shape = (post.sizes["chain"], post.sizes["draw"], len(design.proxies))
    log_sigma = np.zeros(shape)
    if len(strong):
        log_sigma[..., strong] = post["noise_log_sd_centred"].values
    if len(weak):
        mean = post["noise_log_mu"].values[..., None]
        sd = post["noise_log_sd"].values[..., None]
        log_sigma[..., weak] = mean + sd * post["noise_z"].values
    return xr.DataArray(np.exp(log_sigma), dims=(*_SAMPLE, "proxy"))


def _one_factor_capability(post: xr.Dataset, design: Design) -> tuple[np.ndarray, np.ndarray]:
    """Capability draws of the one-factor model, ``loc + b / P + u / sqrt(P)``.

    Returns the capability (chain, draw, unit, 1) and, for the units with a target, the
    link discrepancy's innovations ``discrepancy_z`` (chain, draw, target unit), both from
    the rotated coordinates the model samples (see ``build._marginal_capability``).
    """
    h = hierarchy(design)
    grid = proxy_grid(design)
    x = np.nan_to_num(design.x, nan=0.0)
    no_x = (~np.isfinite(design.x)).astype(float)
    C, S = post.sizes["chain"], post.sizes["draw"]

    def flat(name: str) -> np.ndarray:
        da = post[name]
        rest = [
            d for d in ("unit", "target_unit", "family", "run", "proxy", "factor") if d in da.dims
        ]
        values = np.asarray(da.transpose(*_SAMPLE, *rest).values, float)
        return values.reshape(C * S, *values.shape[2:])

    a_f, b_f = flat("family_intercept")[..., 0], flat("family_slope")[..., 0]
    loc = a_f[:, h.family_idx] + b_f[:, h.family_idx] * x
    if h.use_runs:
        loc = loc + flat("run_intercept")[..., 0][:, h.run_idx]
    prior_var = flat("unit_sd")[:, :1] ** 2 + no_x * b_f[:, h.family_idx] ** 2
    z = flat("capability_z")[..., 0]
    # theta | proxies: precision P = 1 / prior_var + sum_k lam^2 / v and mean
    # (loc / prior_var + sum_k lam (y - mu) / v) / P, the sums in one compiled pass
    P = np.ascontiguousarray(1.0 / prior_var)
    H = loc * P
    observed = grid["observed"] > 0
    add_proxy_evidence(
        P,
        H,
        grid["mean"],
        1.0 / grid["count"],
        np.where(observed, grid["se2"], np.inf),
        flat("unique_sd") ** 2,
        flat("noise_sd") ** 2,
        flat("loading")[..., 0],
        flat("proxy_intercept"),
    )
    t_units = np.unique(design.target_unit)
    a = flat("beta")[:, :1] / np.sqrt(P[:, t_units])
    tau = flat("discrepancy_sd").reshape(-1, 1)
    omega = np.sqrt(a**2 + tau**2)
    zeta = flat("link_z")
    e = z[:, t_units]
    z = z.copy()
    z[:, t_units] = (a * zeta + tau * e) / omega
    delta_z = (tau * zeta - a * e) / omega
    theta = H / P + z / np.sqrt(P)
    return theta.reshape(C, S, -1, 1), delta_z.reshape(C, S, -1)


def add_derived(
    posterior: xr.Dataset,
    design: Design,
    *,
    n_factors: int,
    priors: dict[str, float],
) -> xr.Dataset:
    """Return ``posterior`` with every named quantity of the model added.

    Parameters
    ----------
    posterior : xarray.Dataset
        Free parameters as written by the sampler (dims chain, draw, ...).
    design : Design
        The design the model was built from.
    n_factors : int
    priors : dict
        The resolved priors (for a fixed ceiling).

    Returns
    -------
    xarray.Dataset
    """
    post = posterior.copy()
    if "component_sd" in post:  # one factor: an SD per level (see build_model)
        post["capability_sd"] = np.sqrt((post["component_sd"] ** 2).sum("component"))
        post["variance_share"] = post["component_sd"] ** 2 / post["capability_sd"] ** 2
    share = post["variance_share"]
    parts = [str(c) for c in post["component"].values]

    def part_sd(name: str) -> xr.DataArray:
        if name not in parts:
            return xr.zeros_like(share.isel(component=0, drop=True))
        if "component_sd" in post:
            return post["component_sd"].sel(component=name, drop=True)
        return np.sqrt(share.sel(component=name, drop=True))  # several factors: unit variance

    post["family_intercept_sd"] = part_sd("family")
    post["family_intercept"] = post["family_effect"]
    post["slope_mu"] = part_sd("compute")
    if "family_slope_dev" in post:
        spread = post["family_slope_spread"]
        post["family_slope_sd"] = post["slope_mu"] * spread
        post["family_slope"] = post["slope_mu"] * (
            1.0 + spread ** (1.0 - FAMILY_SLOPE_CENTRING) * post["family_slope_dev"]
        )
    else:  # no unit has a known compute
        post["family_slope_sd"] = xr.zeros_like(post["slope_mu"])
        post["family_slope"] = xr.zeros_like(post["family_intercept"])
    if "run" in parts:
        post["run_intercept_sd"] = part_sd("run")
        h = hierarchy(design)
        # labelled: forecasts match a new table's runs to these by name
        basis = xr.DataArray(
            run_contrast_basis(h), dims=("run", "run_contrast"), coords={"run": h.runs}
        )
        post["run_intercept"] = xr.dot(basis, post["run_effect_contrast"], dim="run_contrast")
    post["unit_sd"] = part_sd("unit")
    post["noise_sd"] = _noise_sd(post, design).assign_coords(proxy=post["proxy"].values)
    if n_factors > 1:
        raw = post["loading_raw"]
        rows = np.arange(raw.sizes["proxy"])[:, None]
        cols = np.arange(raw.sizes["factor"])[None, :]
        lower = xr.DataArray((rows >= cols).astype(float), dims=("proxy", "factor"))
        diag = xr.DataArray(rows == cols, dims=("proxy", "factor"))
        post["loading"] = xr.where(diag, np.abs(raw), raw) * lower
    else:
        post["loading"] = (1.0 + post["loading_deviation"]).transpose(*_SAMPLE, "proxy", "factor")
        theta, delta_z = _one_factor_capability(post, design)
        post["capability"] = xr.DataArray(
            theta,
            dims=(*_SAMPLE, "unit", "factor"),
            coords={"unit": post["unit"].values, "factor": post["factor"].values},
        )
        post["discrepancy_z"] = xr.DataArray(
            delta_z,
            dims=(*_SAMPLE, "target_unit"),
            coords={"target_unit": post["link_z"]["target_unit"].values},
        )
    chance = float(design.target_chance)
    if "ceiling_frac" in post:
        post["ceiling"] = chance + (1.0 - chance) * post["ceiling_frac"]
        ceiling = post["ceiling"]
    else:
        ceiling = max(float(priors["ceiling"]), chance + 1e-3)
    theta, beta = post["capability"], post["beta"]
    # the sampled intercept is at the mean capability of the units with a target (build_model)
    t_mean = theta.isel(unit=np.unique(design.target_unit)).mean("unit")
    post["alpha"] = post["alpha_centred"] - (t_mean * beta).sum("factor")
    lin = post["alpha"] + (theta * beta).sum("factor")
    post["target_p"] = chance + (ceiling - chance) * _sigmoid(lin)

    # proxy properties (see build_model): covariance of capability across units
    centered = theta - theta.mean("unit")
    n_units = theta.sizes["unit"]
    cov = xr.dot(centered, centered.rename(factor="factor2"), dim="unit") / (n_units - 1)
    loading = post["loading"]
    beta2 = beta.rename(factor="factor2")
    cov_lb = xr.dot(loading, xr.dot(cov, beta2, dim="factor2"), dim="factor")
    var_true = (
        xr.dot(xr.dot(loading, cov, dim="factor"), loading.rename(factor="factor2"), dim="factor2")
        + post["unique_sd"] ** 2
    )
    var_link = xr.dot(beta, xr.dot(cov, beta2, dim="factor2"), dim="factor")
    sigma2 = post["noise_sd"] ** 2
    post["alignment"] = np.abs(cov_lb) / np.sqrt(var_true * var_link)
    post["stability"] = 1.0 - sigma2 / (var_true + sigma2)
    reps = xr.DataArray(design.replicates_per_proxy, dims="proxy")
    raw_w = xr.dot(loading, beta, dim="factor") / (post["unique_sd"] ** 2 + sigma2 / reps)
    post["weight"] = raw_w / np.abs(raw_w).sum("proxy")
    order = ("chain", "draw", "unit", "family", "run", "proxy", "factor", "component")
    for name in DERIVED:
        if name not in post:
            continue
        post[name] = post[name].transpose(*[d for d in order if d in post[name].dims], ...)
    return post
