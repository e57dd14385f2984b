"""The one-factor model's log density and its gradient, written out by hand and compiled once.

The PyMC graph of :mod:`bayesproxy.model.build` is the model's definition. Sampling it
through nutpie means compiling that graph to machine code in every new process (numba
cannot cache the generated callbacks on disk: tens of seconds), and each gradient then runs
a few dozen small array operations over the (unit, proxy) grid (~0.2 ms on the reference
table). The default model (one factor, Binomial target) is simple enough to write out: this
module evaluates the same log density, at the same unconstrained point and with the same
transforms as PyMC (log for scales, log-odds for the ceiling share, PyMC's zero-sum basis),
in two fused passes over the grid, with the reverse-mode gradient by hand. Its loops are
generic over the table's sizes, so numba compiles them once per installation and caches
them on disk.

The tests hold it to PyMC's own ``logp`` and ``dlogp`` of the same model at random points;
it differs from PyMC's log density by a constant only (normalising constants that depend on
the data and the priors alone are left out).

All inputs travel in one float64 array (``blob``): a header of sizes, offsets and prior
constants, then the data. :func:`pack` builds it from a design and its PyMC model.

Examples
--------
>>> import numpy as np
>>> from bayesproxy.datasets import simulate
>>> from bayesproxy.model.build import build_model
>>> from bayesproxy.model.design import build_design
>>> from bayesproxy.model.priors import resolve_priors
>>> table = simulate(n_families=2, n_runs_per_family=2, n_checkpoints=3, random_seed=0).table
>>> design = build_design(table, target=table.target)
>>> priors = resolve_priors()
>>> model = build_model(design, priors=priors, n_factors=1)
>>> packed = pack(design, model, priors=priors)
>>> x = np.zeros(packed.n_dim)
>>> grad = np.empty_like(x)
>>> bool(np.isfinite(logp_and_gradient(x, packed.blob, grad)))
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Any

import numba
import numpy as np

from bayesproxy.model.build import (
    FAMILY_SLOPE_CENTRING,
    binomial_counts,
    hierarchy,
    noise_split,
    proxy_grid,
    run_contrast_basis,
)
from bayesproxy.model.design import Design

__all__ = [
    "VALUE_VARIABLES",
    "PackedDensity",
    "callback_addresses",
    "common_half_dof",
    "is_loaded",
    "logp_and_gradient",
    "pack",
    "supports",
]

#: PyMC's value variables of the one-factor model, in the order PyMC lists them.
VALUE_VARIABLES = (
    "component_sd_log__",
    "family_effect_zerosum__",
    "family_slope_spread_log__",
    "family_slope_dev_zerosum__",
    "run_effect_contrast",
    "proxy_intercept",
    "loading_deviation_zerosum__",
    "unique_sd_log__",
    "noise_log_mu",
    "noise_log_sd_log__",
    "noise_log_sd_centred",
    "noise_z",
    "capability_z",
    "beta_log__",
    "alpha_centred",
    "ceiling_frac_logodds__",
    "discrepancy_sd_log__",
    "link_z",
)
_OFFSET = {name: i for i, name in enumerate(VALUE_VARIABLES)}

# header slots: sizes and model constants, then each value variable's offset in x (-1 when
# absent), then the hierarchy's component positions and the prior constants, then where each
# data array starts
(
    _N,
    _K,
    _F,
    _R,
    _RC,
    _T,
    _NS,
    _NW,
    _C,
    _NDIM,
    _CHANCE,
    _CEILING,
    _CENTRING,
) = range(13)
_X0 = _CENTRING + 1  # offsets of the value variables in x
_COMP0 = _X0 + len(VALUE_VARIABLES)  # positions of compute / family / run / unit in comp_sd
_PRIOR0 = _COMP0 + 4
_PRIORS = (
    "component_sd_shape",
    "component_sd",
    "family_slope_spread",
    "proxy_intercept_sd",
    "loading_sd",
    "unique_sd",
    "noise_log_mu",
    "noise_log_mu_sd",
    "noise_log_sd",
    "beta_sd",
    "alpha_sd",
    "ceiling_a",
    "ceiling_b",
    "discrepancy_sd",
)
_DATA0 = _PRIOR0 + len(_PRIORS)
_DATA = (
    "compute_x",
    "compute_unknown",
    "family_index",
    "run_index",
    "proxy_mean",
    "proxy_observed",
    "proxy_inverse_count",
    "proxy_se2",
    "proxy_half_dof",
    "proxy_sum_squares",
    "proxy_common_half_dof",
    "run_contrast_basis",
    "target_unit_index",
    "target_successes",
    "target_failures",
    "noise_strong",
    "noise_weak",
    "proxy_se2_max",
    "proxy_inverse_count_max",
)
_HEADER = _DATA0 + len(_DATA)
#: Rows of the grid between range checks of the running products of pass 1, and the bound
#: on their factors that makes that safe: 16 factors within [1e-12.5, 1e12.5] cannot take a
#: product from (1e-100, 1e100) out of (1e-300, 1e300), far from underflow and overflow.
_CHECK_ROWS = 16
_FACTOR_BOUND = 10.0**12.5


def supports(design: Design, *, n_factors: int) -> bool:
    """Whether the hand-written density covers this model (one factor, Binomial target).

    Examples
    --------
    >>> from bayesproxy.datasets import simulate
    >>> from bayesproxy.model.design import build_design
    >>> table = simulate(n_families=2, n_runs_per_family=2, n_checkpoints=3, random_seed=0).table
    >>> design = build_design(table, target=table.target)
    >>> supports(design, n_factors=1), supports(design, n_factors=2)
    (True, False)
    """
    return int(n_factors) == 1 and design.likelihood == "binomial"


@dataclass(frozen=True)
class PackedDensity:
    """A table's data and priors laid out for :func:`logp_and_gradient`.

    Attributes
    ----------
    blob : ndarray
        Header, prior constants and data, float64.
    n_dim : int
        Length of the unconstrained parameter vector.
    layout : dict of str to (int, tuple of int)
        Each present value variable's offset in that vector and its shape.
    """

    blob: np.ndarray
    n_dim: int
    layout: dict[str, tuple[int, tuple[int, ...]]]


def pack(design: Design, model: Any, *, priors: dict[str, float]) -> PackedDensity:
    """Lay out a design's data, its priors and its model's parameter vector in one array.

    Parameters
    ----------
    design : Design
    model : pymc.Model or ModelSpec
        The one-factor model :func:`~bayesproxy.model.build.build_model` built for
        ``design``, or its :class:`~bayesproxy.model.spec.ModelSpec` (it fixes which value
        variables exist and their shapes).
    priors : dict
        From :func:`~bayesproxy.model.priors.resolve_priors`.

    Returns
    -------
    PackedDensity
    """
    from bayesproxy.model.spec import ModelSpec, spec_of

    spec = model if isinstance(model, ModelSpec) else spec_of(model)
    if not supports(design, n_factors=len(spec.coords["factor"])):
        raise ValueError("the hand-written density covers one factor and a Binomial target")
    present = set(spec.value_names)
    unknown = sorted(present - set(VALUE_VARIABLES))
    if unknown:  # the model grew a parameter this module does not know
        raise ValueError(f"value variables {unknown} are not in the hand-written density")
    h = hierarchy(design)
    grid = proxy_grid(design)
    strong, weak = noise_split(design)
    t_units = np.unique(design.target_unit)
    basis = run_contrast_basis(h) if h.use_runs else np.zeros((len(h.runs), 0))
    components = list(spec.coords["component"])
    n_fam, n_prox = len(h.families), len(design.proxies)
    shapes = {
        "component_sd_log__": (1, len(components)),
        "family_effect_zerosum__": (1, n_fam - 1),
        "family_slope_spread_log__": (),
        "family_slope_dev_zerosum__": (1, n_fam - 1),
        "run_effect_contrast": (basis.shape[1], 1),
        "proxy_intercept": (n_prox,),
        "loading_deviation_zerosum__": (1, n_prox - 1),
        "unique_sd_log__": (n_prox,),
        "noise_log_mu": (),
        "noise_log_sd_log__": (),
        "noise_log_sd_centred": (len(strong),),
        "noise_z": (len(weak),),
        "capability_z": (design.n_units, 1),
        "beta_log__": (1,),
        "alpha_centred": (),
        "ceiling_frac_logodds__": (),
        "discrepancy_sd_log__": (),
        "link_z": (len(t_units),),
    }
    layout: dict[str, tuple[int, tuple[int, ...]]] = {}
    offset = 0
    for name in VALUE_VARIABLES:
        if name in present:
            layout[name] = (offset, shapes[name])
            offset += math.prod(shapes[name])
    n_items, k = binomial_counts(design)
    position = np.searchsorted(t_units, design.target_unit)
    common_hdof = common_half_dof(grid["half_dof"])
    data = {
        "compute_x": np.nan_to_num(design.x, nan=0.0),
        "compute_unknown": (~np.isfinite(design.x)).astype(float),
        "family_index": h.family_idx,
        "run_index": h.run_idx,
        "proxy_mean": grid["mean"],
        "proxy_observed": grid["observed"],
        "proxy_inverse_count": grid["observed"] / grid["count"],
        "proxy_se2": grid["se2"],
        "proxy_half_dof": grid["half_dof"],
        "proxy_sum_squares": grid["sum_squares"],
        "proxy_common_half_dof": common_hdof,
        "run_contrast_basis": basis,
        "target_unit_index": t_units,
        # log C(n, k) is a constant: a unit's replicates add up to one Binomial term
        "target_successes": np.bincount(position, weights=k, minlength=len(t_units)),
        "target_failures": np.bincount(position, weights=n_items - k, minlength=len(t_units)),
        "noise_strong": strong,
        "noise_weak": weak,
        # per proxy: bound the running products' factors (see _CHECK_ROWS)
        "proxy_se2_max": grid["se2"].max(axis=0, initial=0.0),
        "proxy_inverse_count_max": (grid["observed"] / grid["count"]).max(axis=0, initial=0.0),
    }
    header = np.full(_HEADER, -1.0)
    header[_N] = design.n_units
    header[_K] = len(design.proxies)
    header[_F] = len(h.families)
    header[_R] = len(h.runs)
    header[_RC] = basis.shape[1]
    header[_T] = len(t_units)
    header[_NS] = len(strong)
    header[_NW] = len(weak)
    header[_C] = len(components)
    header[_NDIM] = offset
    header[_CHANCE] = design.target_chance
    header[_CEILING] = (
        np.nan
        if math.isnan(priors["ceiling"])
        else max(priors["ceiling"], design.target_chance + 1e-3)
    )
    # in the header, not a global of the kernel: numba's disk cache would keep a stale value
    header[_CENTRING] = FAMILY_SLOPE_CENTRING
    for name, (start, _) in layout.items():
        header[_X0 + _OFFSET[name]] = start
    for j, part in enumerate(("compute", "family", "run", "unit")):
        header[_COMP0 + j] = components.index(part) if part in components else -1
    for j, name in enumerate(_PRIORS):
        header[_PRIOR0 + j] = priors[name]
    chunks = [header]
    start = _HEADER
    for j, name in enumerate(_DATA):
        header[_DATA0 + j] = start
        flat = np.ascontiguousarray(data[name], dtype=np.float64).ravel()
        chunks.append(flat)
        start += flat.size
    return PackedDensity(blob=np.concatenate(chunks), n_dim=offset, layout=layout)


def common_half_dof(half_dof: np.ndarray) -> np.ndarray:
    """Each proxy's half replicate degrees of freedom shared by its replicated cells.

    Returns
    -------
    ndarray, shape (proxies,)
        The common ``(J - 1) / 2`` of the cells with ``J >= 2``; 0 when no cell is
        replicated, -1 when the replicated cells differ (their log terms are then taken
        cell by cell).

    Examples
    --------
    >>> import numpy as np
    >>> common_half_dof(np.array([[1.0, 0.0, 0.5], [1.0, 0.0, 1.0]])).tolist()
    [1.0, 0.0, -1.0]
    """
    out = np.zeros(half_dof.shape[1])
    for k in range(half_dof.shape[1]):
        values = np.unique(half_dof[half_dof[:, k] > 0, k])
        if len(values) == 1:
            out[k] = values[0]
        elif len(values) > 1:
            out[k] = -1.0
    return out


_LOADED: list[bool] = []  # non-empty once _kernels has run in this process


_njit = numba.njit(
    cache=True,
    nogil=True,
    error_model="numpy",
    fastmath={"reassoc", "contract", "arcp", "nsz"},
)


@_njit
def _zerosum_extend(u, n_minus_1, out):  # pragma: no cover - compiled
    # PyMC's ZeroSumTransform.backward: n - 1 free values to n values summing to zero
    n = n_minus_1 + 1.0
    root = math.sqrt(n)
    s = 0.0
    for j in range(n_minus_1):
        s += u[j]
    norm = s / (root + n)
    for j in range(n_minus_1):
        out[j] = u[j] - norm
    out[n_minus_1] = -s / root


@_njit
def _zerosum_adjoint(g_out, n_minus_1, g_u):  # pragma: no cover - compiled
    # g_u += J^T g_out for the map above
    n = n_minus_1 + 1.0
    root = math.sqrt(n)
    s = 0.0
    for j in range(n_minus_1):
        s += g_out[j]
    shift = s / (root + n) + g_out[n_minus_1] / root
    for j in range(n_minus_1):
        g_u[j] += g_out[j] - shift


@_njit
def _view(blob, slot, size):  # pragma: no cover - compiled
    start = int(blob[_DATA0 + slot])
    return blob[start : start + size]


@_njit
def _density(x, blob, grad):  # pragma: no cover - compiled
    N = int(blob[_N])
    K = int(blob[_K])
    F = int(blob[_F])
    R = int(blob[_R])
    RC = int(blob[_RC])
    T = int(blob[_T])
    NS = int(blob[_NS])
    NW = int(blob[_NW])
    C = int(blob[_C])
    chance = blob[_CHANCE]
    w_slope = blob[_CENTRING]
    a_comp = blob[_PRIOR0 + 0]
    b_comp = a_comp / blob[_PRIOR0 + 1]
    s_spread = blob[_PRIOR0 + 2]
    s_mu = blob[_PRIOR0 + 3]
    s_load = blob[_PRIOR0 + 4]
    s_unique = blob[_PRIOR0 + 5]
    m_noise = blob[_PRIOR0 + 6]
    s_noise_mu = blob[_PRIOR0 + 7]
    s_noise_sd = blob[_PRIOR0 + 8]
    s_beta = blob[_PRIOR0 + 9]
    s_alpha = blob[_PRIOR0 + 10]
    a_ceil = blob[_PRIOR0 + 11]
    b_ceil = blob[_PRIOR0 + 12]
    s_disc = blob[_PRIOR0 + 13]

    xs = _view(blob, 0, N)
    nox = _view(blob, 1, N)
    fam = _view(blob, 2, N)
    run = _view(blob, 3, N)
    y = _view(blob, 4, N * K)
    obs = _view(blob, 5, N * K)
    inv_j = _view(blob, 6, N * K)
    se2 = _view(blob, 7, N * K)
    hdof = _view(blob, 8, N * K)
    ssq = _view(blob, 9, N * K)
    col_hdof = _view(blob, 10, K)
    basis = _view(blob, 11, R * RC)
    t_unit = _view(blob, 12, T)
    succ = _view(blob, 13, T)
    fail = _view(blob, 14, T)
    strong = _view(blob, 15, NS)
    weak = _view(blob, 16, NW)
    se2_max = _view(blob, 17, K)
    inv_j_max = _view(blob, 18, K)

    o_comp = int(blob[_X0 + 0])
    o_fam = int(blob[_X0 + 1])
    o_spread = int(blob[_X0 + 2])
    o_sld = int(blob[_X0 + 3])
    o_runc = int(blob[_X0 + 4])
    o_mu = int(blob[_X0 + 5])
    o_load = int(blob[_X0 + 6])
    o_psi = int(blob[_X0 + 7])
    o_nmu = int(blob[_X0 + 8])
    o_nsd = int(blob[_X0 + 9])
    o_nstr = int(blob[_X0 + 10])
    o_nweak = int(blob[_X0 + 11])
    o_z = int(blob[_X0 + 12])
    o_beta = int(blob[_X0 + 13])
    o_alpha = int(blob[_X0 + 14])
    o_ceil = int(blob[_X0 + 15])
    o_dsd = int(blob[_X0 + 16])
    o_dz = int(blob[_X0 + 17])
    i_compute = int(blob[_COMP0 + 0])
    i_family = int(blob[_COMP0 + 1])
    i_run = int(blob[_COMP0 + 2])
    i_unit = int(blob[_COMP0 + 3])

    for j in range(x.shape[0]):
        grad[j] = 0.0
    lp = 0.0

    # --- hierarchy SDs: Gamma(a, a / mean) on each, log-transformed -----------------
    comp_sd = np.empty(C)
    g_comp_sd = np.zeros(C)
    for c in range(C):
        u = x[o_comp + c]
        comp_sd[c] = math.exp(u)
        lp += a_comp * u - b_comp * comp_sd[c]
    fam_sd = comp_sd[i_family]
    fam_eff = np.empty(F)
    _zerosum_extend(x[o_fam : o_fam + F - 1], F - 1, fam_eff)
    ss_fam = 0.0
    for f in range(F - 1):
        ss_fam += x[o_fam + f] ** 2
    lp += -0.5 * ss_fam / fam_sd**2 - (F - 1) * math.log(fam_sd)

    slope = np.zeros(F)
    slope_dev = np.zeros(F)
    rel = 0.0
    smu = 0.0
    dev_prec = 1.0  # of the slope deviations: spread ** -(2 w)
    dev_scale = 0.0  # spread ** (1 - w)
    ss_dev = 0.0
    if i_compute >= 0:
        u = x[o_spread]
        rel = math.exp(u)
        lp += -0.5 * (rel / s_spread) ** 2 + u
        # partially non-centred (build.FAMILY_SLOPE_CENTRING): dev ~ N(0, spread ** w) and
        # slope = s_x (1 + spread ** (1 - w) dev)
        _zerosum_extend(x[o_sld : o_sld + F - 1], F - 1, slope_dev)
        for f in range(F - 1):
            ss_dev += x[o_sld + f] ** 2
        dev_prec = math.exp(-2.0 * w_slope * u)
        dev_scale = math.exp((1.0 - w_slope) * u)
        lp += -0.5 * ss_dev * dev_prec - w_slope * (F - 1) * u
        smu = comp_sd[i_compute]
        for f in range(F):
            slope[f] = smu * (1.0 + dev_scale * slope_dev[f])

    run_eff = np.zeros(R)
    run_sd = 1.0
    if i_run >= 0:
        run_sd = comp_sd[i_run]
        for c in range(RC):
            v = x[o_runc + c]
            lp += -0.5 * (v / run_sd) ** 2 - math.log(run_sd)
        for r in range(R):
            acc = 0.0
            for c in range(RC):
                acc += basis[r * RC + c] * x[o_runc + c]
            run_eff[r] = acc

    unit_sd = comp_sd[i_unit]
    loc = np.empty(N)
    s2 = np.empty(N)
    for i in range(N):
        f = int(fam[i])
        loc[i] = fam_eff[f] + slope[f] * xs[i]
        if i_run >= 0:
            loc[i] += run_eff[int(run[i])]
        s2[i] = unit_sd**2 + nox[i] * slope[f] ** 2

    # --- measurement parameters -------------------------------------------------------
    mu = np.empty(K)
    for k in range(K):
        mu[k] = x[o_mu + k]
        lp += -0.5 * (mu[k] / s_mu) ** 2
    lam = np.empty(K)
    _zerosum_extend(x[o_load : o_load + K - 1], K - 1, lam)
    for k in range(K):
        lam[k] += 1.0
    for k in range(K - 1):
        lp += -0.5 * (x[o_load + k] / s_load) ** 2
    psi2 = np.empty(K)
    for k in range(K):
        u = x[o_psi + k]
        psi2[k] = math.exp(2.0 * u)
        lp += -0.5 * psi2[k] / s_unique**2 + u
    nmu = x[o_nmu]
    lp += -0.5 * ((nmu - m_noise) / s_noise_mu) ** 2
    u = x[o_nsd]
    nsd = math.exp(u)
    lp += -0.5 * (nsd / s_noise_sd) ** 2 + u
    log_sig = np.empty(K)
    for j in range(NS):
        v = x[o_nstr + j]
        log_sig[int(strong[j])] = v
        lp += -0.5 * ((v - nmu) / nsd) ** 2 - math.log(nsd)
    for j in range(NW):
        zj = x[o_nweak + j]
        log_sig[int(weak[j])] = nmu + nsd * zj
        lp += -0.5 * zj**2
    sig2 = np.empty(K)
    for k in range(K):
        sig2[k] = math.exp(2.0 * log_sig[k])

    # --- pass 1 over the grid: marginal likelihood of the proxies, theta | proxies -----
    # The inner loops run over proxies without branches or gathers, so the compiler
    # vectorises them. Logs are the costly part: the sum of log cell precisions and of
    # half_dof * log(2 rep) are taken as logs of running products per proxy (a proxy's
    # cells share half_dof unless flagged mixed), renormalised once they leave 1e+-100
    # (checked per block of rows, or per row); a row with an extreme factor takes its logs
    # one by one.
    prec = np.empty(N)
    bvec = np.empty(N)
    pc_grid = np.empty(N * K)
    # d lp / d sigma^2 of each proxy: the terms of pass 1's own log terms are summed here
    g_sig2 = np.zeros(K)
    prod_pc = np.ones(K)
    prod_rep = np.ones(K)
    before_pc = np.empty(K)
    before_rep = np.empty(K)
    any_mixed = False  # a proxy whose replicated cells differ in half_dof
    for k in range(K):
        any_mixed |= col_hdof[k] < 0.0
    # Where every factor of the products is bounded (_CHECK_ROWS), they are multiplied in
    # the loop over the row's cells and checked once per block of rows: the per-row check
    # was 4 of the gradient's ~36 us on the reference table. Otherwise (extreme parameters
    # at the start of warmup, mixed replicate counts) each row is checked as it comes.
    bounded = not any_mixed
    for k in range(K):
        low_rep = 2.0 * sig2[k]
        high_rep = 2.0 * (sig2[k] + se2_max[k])
        high_pc = 1.0 / psi2[k]  # pc = 1 / (psi2 + rep / J)
        low_pc = 1.0 / (psi2[k] + 0.5 * high_rep * inv_j_max[k])
        bounded &= (
            (low_rep > 1.0 / _FACTOR_BOUND)
            & (high_rep < _FACTOR_BOUND)
            & (low_pc > 1.0 / _FACTOR_BOUND)
            & (high_pc < _FACTOR_BOUND)
        )
    for i in range(N):
        p_i = 0.0
        b_i = 0.0
        q_i = 0.0
        ss_i = 0.0
        base = i * K
        li = loc[i]
        if not bounded:  # kept for an extreme factor's logs, taken one by one
            for k in range(K):
                before_pc[k] = prod_pc[k]
                before_rep[k] = prod_rep[k]
        for k in range(K):
            rep = sig2[k] + se2[base + k]
            ir = 1.0 / rep
            pc = obs[base + k] / (psi2[k] + rep * inv_j[base + k])
            pc_grid[base + k] = pc
            lk = lam[k]
            r = y[base + k] - mu[k] - lk * li
            q_i += r * r * pc
            p_i += pc * lk * lk
            b_i += r * pc * lk
            ss_i += ssq[base + k] * ir
            # of -0.5 ssq / rep and -half_dof log(2 rep): they do not wait for the reverse pass
            g_sig2[k] += (0.5 * ssq[base + k] * ir - hdof[base + k]) * ir
            # factors of 1 where a cell adds no log term: unobserved, or not replicated, or
            # of a proxy with mixed replicate counts (col_hdof -1: logs taken cell by cell);
            # a select, not 1 + flag * (2 rep - 1), which loses a tiny rep's digits
            prod_pc[k] *= pc + (1.0 - obs[base + k])
            prod_rep[k] *= 2.0 * rep if hdof[base + k] * col_hdof[k] > 0.0 else 1.0
        lp -= 0.5 * (q_i + ss_i)
        if bounded:
            if i % _CHECK_ROWS == _CHECK_ROWS - 1:
                for k in range(K):
                    if not (1e-100 < prod_pc[k] < 1e100):
                        lp += 0.5 * math.log(prod_pc[k])
                        prod_pc[k] = 1.0
                    if not (1e-100 < prod_rep[k] < 1e100):
                        lp -= col_hdof[k] * math.log(prod_rep[k])
                        prod_rep[k] = 1.0
        else:
            n_out = 0  # running products that left (1e-100, 1e100) (or turned NaN) at this row
            for k in range(K):
                # counted without branches, so this loop vectorises; the rare rows that need
                # renormalising or cell-by-cell logs take the scalar loop below (it was a
                # quarter of the gradient's time when it ran on every row)
                in_range = (
                    (prod_pc[k] > 1e-100)
                    & (prod_pc[k] < 1e100)
                    & (prod_rep[k] > 1e-100)
                    & (prod_rep[k] < 1e100)
                )
                n_out += not in_range
            if n_out > 0 or any_mixed:
                for k in range(K):
                    if col_hdof[k] < 0.0 and hdof[base + k] > 0.0:  # mixed replicate counts
                        lp -= hdof[base + k] * math.log(2.0 * (sig2[k] + se2[base + k]))
                    if not (1e-100 < prod_pc[k] < 1e100):
                        if 1e-300 < prod_pc[k] < 1e300:
                            lp += 0.5 * math.log(prod_pc[k])
                        else:  # an extreme factor: logs one by one
                            lp += 0.5 * math.log(before_pc[k])
                            if obs[base + k] > 0.0:
                                lp += 0.5 * math.log(pc_grid[base + k])
                        prod_pc[k] = 1.0
                    if not (1e-100 < prod_rep[k] < 1e100):
                        if 1e-300 < prod_rep[k] < 1e300:
                            lp -= col_hdof[k] * math.log(prod_rep[k])
                        else:
                            lp -= col_hdof[k] * math.log(before_rep[k])
                            if hdof[base + k] * col_hdof[k] > 0.0:
                                lp -= col_hdof[k] * math.log(2.0 * (sig2[k] + se2[base + k]))
                        prod_rep[k] = 1.0
        p_i += 1.0 / s2[i]
        prec[i] = p_i
        bvec[i] = b_i
        lp += 0.5 * b_i * b_i / p_i - 0.5 * math.log(s2[i] * p_i)
    for k in range(K):
        lp += 0.5 * math.log(prod_pc[k])
        if col_hdof[k] > 0.0:
            lp -= col_hdof[k] * math.log(prod_rep[k])

    # --- target link ------------------------------------------------------------------
    u = x[o_beta]
    beta = math.exp(u)
    lp += -0.5 * (beta / s_beta) ** 2 + u
    alpha_c = x[o_alpha]
    lp += -0.5 * (alpha_c / s_alpha) ** 2
    if o_ceil >= 0:
        u = x[o_ceil]
        frac = 1.0 / (1.0 + math.exp(-u))
        # Beta(a, b) density and the log-odds Jacobian: a log f + b log(1 - f)
        lp += -a_ceil * math.log1p(math.exp(-u)) - b_ceil * math.log1p(math.exp(u))
        ceiling = chance + (1.0 - chance) * frac
    else:
        frac = 0.0
        ceiling = blob[_CEILING]
    u = x[o_dsd]
    dsd = math.exp(u)
    lp += -0.5 * (dsd / s_disc) ** 2 + u
    # The target units' capability innovation u and link discrepancy delta are sampled
    # rotated (build._marginal_capability): zeta = link_z is what the target sees,
    # e = capability_z the rest; a = beta / sqrt(P), omega = sqrt(a^2 + tau^2),
    # u = (a zeta + tau e) / omega, and the link is alpha + beta m + omega zeta.
    span = ceiling - chance
    sig = np.empty(T)
    omega = np.empty(T)
    shift = np.empty(T)  # u / sqrt(P) of each target unit
    root = np.empty(T)  # sqrt(P) of each target unit, kept for the reverse pass
    m_t = np.empty(T)  # m = loc + b / P of each target unit
    g_q = np.zeros(T)
    mean_t = 0.0
    for j in range(T):
        t = int(t_unit[j])
        root[j] = math.sqrt(prec[t])
        m_t[j] = loc[t] + bvec[t] / prec[t]
        a = beta / root[j]
        omega[j] = math.sqrt(a * a + dsd * dsd)
        zeta = x[o_dz + j]
        shift[j] = (a * zeta + dsd * x[o_z + t]) / (omega[j] * root[j])
        mean_t += m_t[j] + shift[j]
    mean_t /= T
    alpha = alpha_c - mean_t * beta
    for j in range(T):
        eta = alpha + m_t[j] * beta + omega[j] * x[o_dz + j]
        sig[j] = 1.0 / (1.0 + math.exp(-eta))
    for j in range(T):  # successes and failures summed over each unit's replicates
        q = chance + span * sig[j]
        if succ[j] > 0.0:
            lp += succ[j] * math.log(q)
            g_q[j] += succ[j] / q
        if fail[j] > 0.0:
            lp += fail[j] * math.log(1.0 - q)
            g_q[j] -= fail[j] / (1.0 - q)
    for i in range(N):
        zi = x[o_z + i]
        lp += -0.5 * zi * zi
    for j in range(T):
        zeta = x[o_dz + j]
        lp += -0.5 * zeta * zeta

    # --- reverse pass: target -----------------------------------------------------------
    g_m = np.zeros(N)  # with respect to m = loc + b / P
    g_p = np.zeros(N)  # with respect to P, from the rotation
    g_alpha = 0.0
    g_beta = 0.0
    g_dsd = 0.0
    g_ceiling = 0.0
    g_eta = np.empty(T)
    for j in range(T):
        t = int(t_unit[j])
        g_eta[j] = g_q[j] * span * sig[j] * (1.0 - sig[j])
        g_ceiling += g_q[j] * sig[j]
        g_alpha += g_eta[j]
        g_beta += g_eta[j] * m_t[j]
        g_m[t] += g_eta[j] * beta
    grad[o_alpha] += g_alpha - alpha_c / s_alpha**2
    g_beta -= g_alpha * mean_t
    g_mean = -g_alpha * beta / T  # d alpha / d (m + shift) of each target unit
    for j in range(T):
        t = int(t_unit[j])
        inv_root = 1.0 / root[j]
        a = beta * inv_root
        w = omega[j]
        inv_w = 1.0 / w
        g_wr = g_mean * inv_w * inv_root  # g_mean / (omega root)
        zeta = x[o_dz + j]
        e = x[o_z + t]
        g_m[t] += g_mean
        # shift = (a zeta + tau e) / (omega root); eta has omega zeta
        g_w = g_eta[j] * zeta - g_mean * shift[j] * inv_w
        g_a = g_wr * zeta + g_w * a * inv_w
        g_tau = g_wr * e + g_w * dsd * inv_w
        g_root = -(g_mean * shift[j] + g_a * a) * inv_root
        grad[o_dz + j] += g_eta[j] * w + g_wr * a - zeta
        grad[o_z + t] += g_wr * dsd
        g_beta += g_a * inv_root
        g_dsd += g_tau
        g_p[t] += 0.5 * g_root * inv_root
    grad[o_beta] += g_beta * beta - (beta / s_beta) ** 2 + 1.0
    grad[o_dsd] += g_dsd * dsd - (dsd / s_disc) ** 2 + 1.0
    if o_ceil >= 0:
        grad[o_ceil] += (
            g_ceiling * (1.0 - chance) * frac * (1.0 - frac) + a_ceil * (1.0 - frac) - b_ceil * frac
        )

    # --- reverse pass: m = loc + b / P, and the marginal's unit terms -----------------
    g_loc = np.empty(N)
    g_b = np.empty(N)
    g_s2 = np.empty(N)
    for i in range(N):
        inv_p = 1.0 / prec[i]
        b_i = bvec[i]
        gm = g_m[i]
        g_loc[i] = gm
        g_b[i] = (gm + b_i) * inv_p
        g_p[i] -= ((gm + 0.5 * b_i) * b_i * inv_p + 0.5) * inv_p
        grad[o_z + i] -= x[o_z + i]
        # P = 1 / s2 + ..., and the -0.5 log(s2) term
        inv_s2 = 1.0 / s2[i]
        g_s2[i] = -(g_p[i] * inv_s2 + 0.5) * inv_s2

    # --- pass 2 over the grid: gradients of the cells ----------------------------------
    g_mu = np.zeros(K)
    g_lam = np.zeros(K)
    g_psi2 = np.zeros(K)
    for i in range(N):
        base = i * K
        gb = g_b[i]
        gp = g_p[i]
        li = loc[i]
        acc_loc = 0.0
        for k in range(K):
            pc = pc_grid[base + k]  # 0 where unobserved: every term below vanishes
            lk = lam[k]
            r = y[base + k] - mu[k] - lk * li
            g_r = (gb * lk - r) * pc
            g_pc = gp * lk * lk + gb * r * lk - 0.5 * r * r
            g_cv = -(g_pc * pc + 0.5) * pc
            g_lam[k] += (2.0 * gp * lk + gb * r) * pc - g_r * li
            g_mu[k] -= g_r
            acc_loc -= g_r * lk
            g_psi2[k] += g_cv
            g_sig2[k] += g_cv * inv_j[base + k]
        g_loc[i] += acc_loc

    # --- reverse pass: measurement parameters -------------------------------------------
    for k in range(K):
        grad[o_mu + k] += g_mu[k] - mu[k] / s_mu**2
        grad[o_psi + k] += 2.0 * psi2[k] * g_psi2[k] - psi2[k] / s_unique**2 + 1.0
    _zerosum_adjoint(g_lam, K - 1, grad[o_load : o_load + K - 1])
    for k in range(K - 1):
        grad[o_load + k] -= x[o_load + k] / s_load**2
    g_nmu = -(nmu - m_noise) / s_noise_mu**2
    g_nsd = 0.0
    for j in range(NS):
        k = int(strong[j])
        v = x[o_nstr + j]
        g_ls = 2.0 * sig2[k] * g_sig2[k]
        dev = (v - nmu) / nsd**2
        grad[o_nstr + j] += g_ls - dev
        g_nmu += dev
        g_nsd += (v - nmu) ** 2 / nsd**3 - 1.0 / nsd
    for j in range(NW):
        k = int(weak[j])
        zj = x[o_nweak + j]
        g_ls = 2.0 * sig2[k] * g_sig2[k]
        grad[o_nweak + j] += g_ls * nsd - zj
        g_nmu += g_ls
        g_nsd += g_ls * zj
    grad[o_nmu] += g_nmu
    grad[o_nsd] += g_nsd * nsd - (nsd / s_noise_sd) ** 2 + 1.0

    # --- reverse pass: hierarchy ------------------------------------------------------
    g_fam = np.zeros(F)
    g_slope = np.zeros(F)
    g_run = np.zeros(R)
    g_unit_sd = 0.0
    for i in range(N):
        f = int(fam[i])
        g_fam[f] += g_loc[i]
        g_slope[f] += g_loc[i] * xs[i] + g_s2[i] * nox[i] * 2.0 * slope[f]
        if i_run >= 0:
            g_run[int(run[i])] += g_loc[i]
        g_unit_sd += g_s2[i] * 2.0 * unit_sd
    g_comp_sd[i_unit] += g_unit_sd
    if i_run >= 0:
        g_run_sd = 0.0
        for c in range(RC):
            acc = 0.0
            for r in range(R):
                acc += basis[r * RC + c] * g_run[r]
            v = x[o_runc + c]
            grad[o_runc + c] += acc - v / run_sd**2
            g_run_sd += v * v / run_sd**3 - 1.0 / run_sd
        g_comp_sd[i_run] += g_run_sd
    if i_compute >= 0:
        g_smu = 0.0
        g_scale = 0.0
        g_slope_dev = np.empty(F)
        for f in range(F):
            g_smu += g_slope[f] * (1.0 + dev_scale * slope_dev[f])
            g_scale += g_slope[f] * smu * slope_dev[f]
            g_slope_dev[f] = g_slope[f] * smu * dev_scale
        _zerosum_adjoint(g_slope_dev, F - 1, grad[o_sld : o_sld + F - 1])
        for f in range(F - 1):
            grad[o_sld + f] -= x[o_sld + f] * dev_prec
        grad[o_spread] += (
            g_scale * (1.0 - w_slope) * dev_scale
            + w_slope * (ss_dev * dev_prec - (F - 1))
            - (rel / s_spread) ** 2
            + 1.0
        )
        g_comp_sd[i_compute] += g_smu
    _zerosum_adjoint(g_fam, F - 1, grad[o_fam : o_fam + F - 1])
    for f in range(F - 1):
        grad[o_fam + f] -= x[o_fam + f] / fam_sd**2
    g_comp_sd[i_family] += ss_fam / fam_sd**3 - (F - 1) / fam_sd
    for c in range(C):
        grad[o_comp + c] += g_comp_sd[c] * comp_sd[c] + a_comp - b_comp * comp_sd[c]
    return lp


@cache
def _kernels() -> tuple[Any, Any, Any]:
    """Compile (or load from numba's disk cache) the density and its C callbacks.

    Everything they call is a module-level function, so the callbacks are no closures and
    numba's cache, keyed by this file, serves every later process.
    """
    c_sig = numba.types.int64(
        numba.types.uint64,
        numba.types.CPointer(numba.types.double),
        numba.types.CPointer(numba.types.double),
        numba.types.CPointer(numba.types.double),
        numba.types.voidptr,
    )

    @numba.cfunc(c_sig, cache=True, error_model="numpy")
    def logp_callback(dim, x_ptr, grad_ptr, logp_ptr, blob_ptr):  # pragma: no cover
        # nutpie's logp signature; return codes as in nutpie (3: gradient, 4: logp not finite)
        header = numba.carray(blob_ptr, (_HEADER,), dtype=np.float64)
        if dim != int(header[_NDIM]):
            return -1
        size = int(header[_DATA0 + len(_DATA) - 1]) + int(header[_K])
        blob = numba.carray(blob_ptr, (size,), dtype=np.float64)
        x = numba.carray(x_ptr, (dim,))
        grad = numba.carray(grad_ptr, (dim,))
        logp = numba.carray(logp_ptr, (1,))
        value = _density(x, blob, grad)
        logp[0] = value
        for j in range(dim):
            if not math.isfinite(grad[j]):
                return 3
        if not math.isfinite(value):
            return 4
        return 0

    expand_sig = numba.types.int64(
        numba.types.uint64,
        numba.types.uint64,
        numba.types.CPointer(numba.types.double),
        numba.types.CPointer(numba.types.double),
        numba.types.voidptr,
    )

    @numba.cfunc(expand_sig, cache=True)
    def expand_callback(dim, expanded, x_ptr, out_ptr, blob_ptr):  # pragma: no cover
        # the sampler stores the unconstrained point; constrained values come afterwards
        if dim != expanded:
            return -1
        x = numba.carray(x_ptr, (dim,))
        out = numba.carray(out_ptr, (dim,))
        for j in range(dim):
            out[j] = x[j]
        return 0

    _LOADED.append(True)
    return _density, logp_callback, expand_callback


def logp_and_gradient(x: np.ndarray, blob: np.ndarray, grad: np.ndarray) -> float:
    """Log density at the unconstrained point ``x``; writes its gradient into ``grad``.

    Parameters
    ----------
    x : ndarray, shape (n_dim,)
        Unconstrained parameters in the layout of :class:`PackedDensity`.
    blob : ndarray
        :attr:`PackedDensity.blob`.
    grad : ndarray, shape (n_dim,)
        Output.

    Returns
    -------
    float
        The log density up to a constant.
    """
    kernel = _kernels()[0]
    return float(kernel(np.ascontiguousarray(x, dtype=np.float64), blob, grad))


def callback_addresses() -> tuple[int, int]:
    """Addresses of the C callbacks nutpie calls: log density, and point to stored draw.

    Both take :attr:`PackedDensity.blob` as their user data.
    """
    _, logp_callback, expand_callback = _kernels()
    return int(logp_callback.address), int(expand_callback.address)


def is_loaded() -> bool:
    """Whether this process has already compiled or loaded the density."""
    return bool(_LOADED)
