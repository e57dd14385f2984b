"""Rank-normalised split R-hat and bulk / tail ESS of many quantities at once.

The estimators of Vehtari et al. (2021), *Rank-normalization, folding, and localization: an
improved R-hat for assessing convergence of MCMC*, computed exactly as ArviZ computes them
(a test compares the two on random chains), but vectorised over quantities: ArviZ loops over
every element of every variable in Python, which on a fit of a few hundred free parameters
and 8,000 draws takes several seconds of the convergence gate run after every fit.

``diagnose`` takes draws of shape ``(chains, draws, quantities)`` and returns the three
estimates per quantity.

Examples
--------
>>> import numpy as np
>>> x = np.random.default_rng(0).normal(size=(4, 1000, 3))
>>> rhat, ess_bulk, ess_tail = diagnose(x)
>>> bool((rhat < 1.01).all()), bool((ess_bulk > 3000).all())
(True, True)
"""

from __future__ import annotations

import numpy as np
from scipy import fft, special

from bayesproxy.threads import for_row_blocks

__all__ = ["TAIL_PROBS", "diagnose"]

#: Quantiles whose indicator ESS gives the tail ESS (the smaller of the two).
TAIL_PROBS = (0.05, 0.95)
#: Quantities per block of :func:`diagnose`.
QUANTITY_BLOCK = 128


# Internally draws are laid out (quantities, chains, draws): every pass runs along the
# contiguous last axis.


def _split(x: np.ndarray) -> np.ndarray:
    """Split each chain in two halves (the middle draw dropped when odd)."""
    half = x.shape[2] // 2
    return np.concatenate([x[:, :, :half], x[:, :, x.shape[2] - half :]], axis=1)


def _normal_scores(twice_rank: np.ndarray) -> np.ndarray:
    """Return the normal scores of pooled ranks given as ``2 * rank - 2`` (Blom's 3/8)."""
    n = twice_rank.shape[1]
    # ranks are multiples of 1/2: look their normal scores up in a table of the 2n values
    table = special.ndtri((np.arange(2 * n) / 2.0 + 1.0 - 3 / 8) / (n - 2 * 3 / 8 + 1))
    return table[twice_rank]


def _z_scales(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return rank-normal scores of the draws and of their distances from the median.

    Ranks are pooled per quantity with ties averaged; the two share one sort.
    """
    from bayesproxy.model.rank_loops import folded_twice_ranks, twice_ranks

    q, chains, draws = x.shape
    flat = x.reshape(q, chains * draws)
    n = flat.shape[1]
    order = np.argsort(flat, axis=1)
    # NumPy's median: the middle value, or the mean of the middle two
    rows = np.arange(q)
    middle = flat[rows, order[:, (n - 1) // 2]]
    median = middle if n % 2 else np.mean([middle, flat[rows, order[:, n // 2]]], axis=0)
    bulk = _normal_scores(twice_ranks(flat, order)).reshape(q, chains, draws)
    folded = _normal_scores(folded_twice_ranks(flat, order, median)).reshape(q, chains, draws)
    return bulk, folded


def _rhat(x: np.ndarray) -> np.ndarray:
    draws = x.shape[2]
    chain_mean = x.mean(axis=2)
    within = x.var(axis=2, ddof=1).mean(axis=1)
    between = draws * chain_mean.var(axis=1, ddof=1)
    return np.sqrt((between / within + draws - 1) / draws)


def _ess(x: np.ndarray) -> np.ndarray:
    """ESS of each quantity from Geyer's initial monotone sequence of autocorrelations."""
    x = np.asarray(x, dtype=float)
    q, chains, n = x.shape
    m = fft.next_fast_len(2 * n)
    spec = fft.rfft(x - x.mean(axis=2, keepdims=True), n=m, axis=2)
    spec *= np.conjugate(spec)
    acov = fft.irfft(spec, n=m, axis=2)[..., :n] / n
    mean_acov = acov.mean(axis=1)  # (q, n)
    mean_var = mean_acov[:, 0] * n / (n - 1.0)
    var_plus = mean_var * (n - 1.0) / n
    if chains > 1:
        var_plus = var_plus + x.mean(axis=2).var(axis=1, ddof=1)
    rho = 1.0 - (mean_var[:, None] - mean_acov) / var_plus[:, None]  # (q, n)
    rho[:, 0] = 1.0
    # pairs (rho[2j], rho[2j + 1]); ArviZ's loop computes pairs 1, 2, ... while the previous
    # pair sum is positive and 2j - 1 < n - 3, and stops after the first non-positive one
    n_pairs = max((n - 3) // 2, 0)
    pairs = rho[:, : 2 * (n_pairs + 1)].reshape(q, n_pairs + 1, 2)
    pair_sum = pairs.sum(axis=2)  # (q, n_pairs + 1)
    nonpos = pair_sum <= 0.0
    first = np.where(nonpos.any(axis=1), nonpos.argmax(axis=1), n_pairs + 1)
    k_star = np.minimum(first, n_pairs)  # the last pair computed
    # initial monotone sequence over pairs 0 .. k* - 1, then the last pair's even term
    monotone = np.minimum.accumulate(pair_sum, axis=1)
    below = np.arange(n_pairs + 1)[None, :] < k_star[:, None]
    total = np.where(below, monotone, 0.0).sum(axis=1)
    rows = np.arange(q)
    last_sum, last_even = pair_sum[rows, k_star], pairs[rows, k_star, 0]
    end = np.where((last_sum >= 0.0) | (last_even > 0.0), last_even, 0.0)
    end = np.where(k_star == 0, 1.0, end)
    size = chains * n
    tau = np.maximum(-1.0 + 2.0 * total + end, 1.0 / np.log10(size))
    ess = np.where(np.isnan(rho).any(axis=1), np.nan, size / tau)
    constant = (x.max(axis=(1, 2)) - x.min(axis=(1, 2))) < np.finfo(float).resolution
    return np.where(constant, float(size), ess)


def _prepare(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draws as (quantities, chains, draws), the estimable quantities and a NaN result.

    ArviZ returns NaN for a quantity with a NaN draw or fewer than 4 draws per chain.
    """
    ok = ~np.isnan(x).any(axis=(0, 1))
    if x.shape[1] < 4:
        ok[:] = False
    xt = np.ascontiguousarray(np.moveaxis(x[..., ok], 2, 0))
    return xt, ok, np.full(x.shape[2], np.nan)


def _ess_tail(xt: np.ndarray, probs: tuple[float, float]) -> np.ndarray:
    pooled = xt.reshape(xt.shape[0], -1)
    cut = np.quantile(pooled, sorted(probs), axis=1)  # (2, q)
    with np.errstate(divide="ignore", invalid="ignore"):
        low, high = (_ess(_split((xt <= c[:, None, None]).astype(float))) for c in cut)
    return np.minimum(low, high)


def diagnose(
    x: np.ndarray, *, probs: tuple[float, float] = TAIL_PROBS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """R-hat, bulk ESS and tail ESS of every quantity, sharing the rank normalisation.

    Parameters
    ----------
    x : ndarray, shape (chains, draws, quantities)
    probs : (float, float), default (0.05, 0.95)

    Returns
    -------
    rhat : ndarray, shape (quantities,)
        Rank-normalised split R-hat, the larger of the bulk and the folded (tail) R-hat;
        NaN with a single chain.
    ess_bulk : ndarray, shape (quantities,)
        The ESS of the rank-normalised split chains.
    ess_tail : ndarray, shape (quantities,)
        The smaller ESS of the indicators of the two quantiles ``probs``.

    All three are NaN for quantities with a NaN draw or fewer than 4 draws per chain.
    """
    x = np.asarray(x, dtype=float)
    if x.ndim != 3:
        raise ValueError(f"expected draws of shape (chains, draws, quantities), got {x.shape}.")
    out = np.full((3, x.shape[2]), np.nan)
    errors = np.geterr()  # NumPy's error state is per thread: the workers take the caller's

    def run(block: slice) -> None:
        with np.errstate(**errors):
            out[:, block] = _diagnose_block(x[..., block], probs)

    # blocks of quantities bound the temporaries (about 10 x the block's draws, per thread);
    # sorts and FFTs release the GIL, so the blocks run on parallel threads
    for_row_blocks(run, x.shape[2], block=QUANTITY_BLOCK)
    return out[0], out[1], out[2]


def _diagnose_block(x: np.ndarray, probs: tuple[float, float]) -> np.ndarray:
    xt, ok, nan = _prepare(x)
    out = np.stack([nan, nan, nan])
    if ok.any():
        z, z_folded = _z_scales(_split(xt))
        with np.errstate(divide="ignore", invalid="ignore"):
            out[1, ok] = _ess(z)
            if xt.shape[1] >= 2:  # R-hat needs two chains
                bulk, tail = _rhat(z), _rhat(z_folded)
                # as ArviZ's max(bulk, tail): a NaN folded R-hat (constant |x - median|)
                # leaves the bulk one
                out[0, ok] = np.where(np.isnan(tail), bulk, np.maximum(bulk, tail))
        out[2, ok] = _ess_tail(xt, probs)
    return out
