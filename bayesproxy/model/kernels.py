"""Compiled inner loops of the forecast: one pass over (draw, unit, proxy) instead of several.

Forecasting 10,000 new units from 1,000 posterior draws visits 10^7 (draw, unit) pairs per
proxy. In NumPy each elementwise step of the conjugate update is a pass over an array of that
size; the loops of :mod:`~bayesproxy.model.forecast_loops` fuse them (cell precision, its
contribution to the capability's precision and to precision times mean) into one pass that
stays in the CPU cache, and run the units in parallel. Each unit's sums run over the
proxies in a fixed order, so the result does not depend on the number of threads.
:func:`true_score_draws` turns capability draws into the target's true score in two
compiled passes around NumPy's vectorised ``exp``.

numba compiles those loops on first use and caches them on disk, so later processes load
them.

Examples
--------
>>> import numpy as np
>>> S, N, K = 2, 3, 4
>>> rng = np.random.default_rng(0)
>>> P, H = np.ones((S, N)), np.zeros((S, N))
>>> y, inv_j, se2 = rng.normal(size=(N, K)), np.ones((N, K)), np.zeros((N, K))
>>> psi2, sig2 = np.full((S, K), 0.5), np.full((S, K), 0.5)
>>> lam, mu = np.ones((S, K)), np.zeros((S, K))
>>> add_proxy_evidence(P, H, y, inv_j, se2, psi2, sig2, lam, mu)
>>> P[0].tolist()  # 1 + 4 proxies of precision 1
[5.0, 5.0, 5.0]
"""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

import numpy as np

__all__ = ["add_proxy_evidence", "one_factor_posterior", "true_score_draws"]

#: numba's fallback thread pool (workqueue) aborts on concurrent calls from two threads
_LOCK = threading.Lock()


def _rows(a: Any) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64)


def _cols(a: Any) -> np.ndarray:
    """(S, K) draws of per-proxy parameters as the (K, S) rows the loops read."""
    return np.ascontiguousarray(np.asarray(a, dtype=np.float64).T)


@cache
def _compiled() -> tuple[Any, ...]:
    """Return the compiled loops (numba is imported here, on first use)."""
    from bayesproxy.model import forecast_loops as loops

    return loops.add_evidence, loops.one_factor_gaussian, loops.link_logits, loops.bounded_scores


def add_proxy_evidence(
    P: np.ndarray,
    H: np.ndarray,
    y: np.ndarray,
    inv_j: np.ndarray,
    se2: np.ndarray,
    psi2: np.ndarray,
    sig2: np.ndarray,
    lam: np.ndarray,
    mu: np.ndarray,
) -> None:
    """Add the proxies' evidence to a one-factor capability's precision ``P`` and ``H``, in place.

    Per draw ``s`` and unit ``n`` the cell precision is ``w = 1 / (psi2 + (sig2 + se2) / J)``
    and the update is ``P += sum_k lam_k^2 w_k`` and ``H += sum_k lam_k (y_k - mu_k) w_k``.

    Parameters
    ----------
    P, H : ndarray, shape (S, N)
        Precision and precision times mean of the capability (the prior's on entry).
    y, inv_j, se2 : ndarray, shape (N, K)
        Cell means, reciprocal replicate counts and squared stderrs; an unobserved cell has
        ``se2 = inf`` (its precision is then exactly 0) and a finite ``y``.
    psi2, sig2, lam, mu : ndarray, shape (S, K)
        Per draw: squared unique SDs, squared replicate-noise SDs, loadings and intercepts.
    """
    lam = _cols(lam)
    kernel = _compiled()[0]
    with _LOCK:
        kernel(
            P,
            H,
            _rows(y),
            _rows(inv_j),
            _rows(se2),
            _cols(psi2),
            _cols(sig2),
            lam * lam,
            lam,
            lam * _cols(mu),
        )


def one_factor_posterior(
    *,
    unit: dict[str, np.ndarray],
    prior: dict[str, np.ndarray],
    cells: dict[str, np.ndarray],
    measurement: dict[str, np.ndarray],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each unit's one-factor capability posterior per draw, Gaussian, in one compiled pass.

    Per draw ``s`` and unit ``n`` the prior is ``N(mean, var)`` with
    ``mean = a_fam[f] + a_run[r] + b_fam[f] x`` and
    ``var = unit_var + new_f (fam_var + slope_var x2) + new_r run_var + no_x b_fam[f]^2``;
    the proxies add their evidence as in :func:`add_proxy_evidence`, and the posterior is
    ``N(H / P, 1 / P)``.

    Parameters
    ----------
    unit : dict
        Per unit (N,): ``fam``, ``run`` (int rows of the tables below), ``x``, ``x2``,
        ``no_x``, ``new_f``, ``new_r`` (floats).
    prior : dict
        ``a_fam``, ``b_fam`` (F', S), ``a_run`` (R', S) and ``unit_var``, ``fam_var``,
        ``slope_var``, ``run_var`` (S,).
    cells : dict
        ``y``, ``inv_j``, ``se2`` (N, K) as for :func:`add_proxy_evidence`.
    measurement : dict
        ``psi2``, ``sig2``, ``lam``, ``mu`` (S, K).

    Returns
    -------
    mean, sd : ndarray, shape (N, S)
        The posterior mean ``H / P`` and SD ``1 / sqrt(P)``, a row per unit.
    theta_mean : ndarray, shape (N,)
        The posterior mean capability per unit (mean over draws of ``H / P``).
    """
    lam = _cols(measurement["lam"])
    shape = (len(unit["x"]), np.size(prior["unit_var"]))
    mean, sd, theta_mean = np.empty(shape), np.empty(shape), np.empty(shape[0])
    kernel = _compiled()[1]
    with _LOCK:
        kernel(
            mean,
            sd,
            theta_mean,
            np.ascontiguousarray(unit["fam"], dtype=np.int64),
            np.ascontiguousarray(unit["run"], dtype=np.int64),
            *(_rows(unit[name]) for name in ("x", "x2", "no_x", "new_f", "new_r")),
            *(_rows(prior[name]) for name in ("a_fam", "b_fam", "a_run")),
            *(_rows(prior[name]) for name in ("unit_var", "fam_var", "slope_var", "run_var")),
            *(_rows(cells[name]) for name in ("y", "inv_j", "se2")),
            _cols(measurement["psi2"]),
            _cols(measurement["sig2"]),
            lam * lam,
            lam,
            lam * _cols(measurement["mu"]),
        )
    return mean, sd, theta_mean


def true_score_draws(
    out: np.ndarray,
    theta: np.ndarray,
    noise: np.ndarray,
    *,
    link: dict[str, np.ndarray],
    excess: np.ndarray,
    chance: float,
    delta: np.ndarray | None = None,
    theta_sd: np.ndarray | None = None,
) -> None:
    """Write a block of units' true-score draws into ``out`` (n, S).

    Two compiled passes (the logits, then the bounded scores) around NumPy's SIMD ``exp``.

    Per unit ``n`` and draw ``s``,
    ``q = c + (u_s - c) * sigmoid(alpha_s + beta_s' theta + delta)``, clipped into
    ``[c, u_s]``, with ``delta`` the known discrepancy where given and finite, else
    ``sqrt(disc_var_s + (extra_sd_s * excess_n)^2) * noise``. The loops are serial and
    releases the GIL, so blocks of units run in parallel on plain threads.

    Parameters
    ----------
    out : ndarray, shape (n, S)
        Written in place.
    theta : ndarray, shape (n, S, D)
        Capability draws, a row per unit.
    noise : ndarray, shape (n, S)
        Standard normal noise.
    link : dict
        ``alpha`` (S,), ``beta`` (S, D), ``disc_var`` (S,) the squared discrepancy SD,
        ``extra_sd`` (S,) the link SD added per training SD of excess, ``ceiling`` (S,).
    excess : ndarray, shape (n,)
    chance : float
    delta : ndarray, shape (n, S), optional
        Known discrepancies; NaN entries take the noise.
    theta_sd : ndarray, shape (n, S), optional
        One factor: ``theta`` is the mean of a Gaussian capability with this SD, whose
        noise joins the discrepancy's (``(beta_s theta_sd)^2`` adds to its variance), so
        one normal per draw makes both; where ``delta`` is known it is added to
        ``|beta_s theta_sd| * noise``.

    Raises
    ------
    ValueError
        If an array's leading shape is not ``out``'s (the compiled loops do not check).

    Examples
    --------
    >>> out = np.empty((1, 2))
    >>> link = {"alpha": np.zeros(2), "beta": np.ones((2, 1)), "disc_var": np.zeros(2),
    ...         "extra_sd": np.zeros(2), "ceiling": np.ones(2)}
    >>> true_score_draws(out, np.zeros((1, 2, 1)), np.zeros((1, 2)), link=link,
    ...                  excess=np.zeros(1), chance=0.25)
    >>> out.tolist()  # halfway between chance and the ceiling
    [[0.625, 0.625]]
    """
    n_rows, n_draws = out.shape
    for name, array in (
        ("theta", theta),
        ("noise", noise),
        ("delta", delta),
        ("theta_sd", theta_sd),
    ):
        if array is not None and np.shape(array)[:2] != (n_rows, n_draws):
            # the compiled loops do not check bounds: refuse here rather than read past
            raise ValueError(
                f"{name} must have shape ({n_rows}, {n_draws}, ...), got {np.shape(array)}."
            )
    if np.shape(excess) != (n_rows,):
        raise ValueError(f"excess must have shape ({n_rows},), got {np.shape(excess)}.")
    logits, scores = _compiled()[2:]
    logits(
        out,
        np.ascontiguousarray(theta, dtype=np.float64),
        _rows(np.zeros((0, out.shape[1])) if theta_sd is None else theta_sd),
        *(_rows(link[name]) for name in ("alpha", "beta")),
        _rows(noise),
        _rows(np.zeros((0, out.shape[1])) if delta is None else delta),
        *(_rows(link[name]) for name in ("disc_var", "extra_sd")),
        _rows(excess),
    )
    np.exp(out, out=out)
    scores(out, _rows(link["ceiling"]), float(chance))
