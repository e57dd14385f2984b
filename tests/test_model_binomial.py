"""The compiled Binomial sampler: its distribution, edges, determinism and input checks."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from scipy import stats

from bayesproxy.model.binomial import binomial_fractions

SIZE = 200_000


def _counts(n: int, p: float, seed: int, size: int = SIZE) -> np.ndarray:
    x = binomial_fractions(np.array([n]), np.full((1, size), p), rng=np.random.default_rng(seed))
    k = np.round(x[0] * n)
    np.testing.assert_array_equal(k / n, x[0])  # each fraction is an integer count over n
    return k.astype(np.int64)


def _chi_square_pvalue(k: np.ndarray, n: int, p: float) -> float:
    """Pearson's test against Binomial(n, p); bins expecting < 5 pooled into one."""
    lo = int(stats.binom.ppf(1e-12, n, p))
    hi = int(stats.binom.isf(1e-12, n, p))
    support = np.arange(lo, hi + 1)
    expected = stats.binom.pmf(support, n, p) * k.size
    inside = (k >= lo) & (k <= hi)
    observed = np.bincount(k[inside] - lo, minlength=support.size).astype(float)
    keep = expected >= 5
    exp_kept, obs_kept = expected[keep], observed[keep]
    # everything else (small bins and beyond the range) is one bin
    exp_rest, obs_rest = k.size - exp_kept.sum(), k.size - obs_kept.sum()
    if exp_rest < 5:  # too small for its own bin: join the smallest kept one
        smallest = np.argmin(exp_kept)
        exp_kept[smallest] += exp_rest
        obs_kept[smallest] += obs_rest
    else:
        exp_kept = np.append(exp_kept, exp_rest)
        obs_kept = np.append(obs_kept, obs_rest)
    if exp_kept.size < 2:
        pytest.fail(f"too few bins for Binomial({n}, {p})")
    chi2 = float((((obs_kept - exp_kept) ** 2) / exp_kept).sum())
    return float(stats.chi2.sf(chi2, exp_kept.size - 1))


# (n, p): inversion (n p < 10) and BTRS, either side of the flip at p = 1/2, the n p = 10
# boundary, n = 1, the edge of the log-factorial table (2**20) and Stirling's series beyond it
CASES = [
    (400, 0.3),
    (400, 0.02),
    (400, 0.97),
    (400, 0.98),
    (10, 0.5),
    (1, 0.3),
    (3000, 0.5),
    (50, 0.2),
    (25, 0.41),
    (1000, 0.01),
    (100_000, 0.3),
    (20, 0.5),
    (19, 0.5),
    (30, 0.9),
    (2**20, 0.4),
    (3_000_000, 0.7),
]


@pytest.mark.parametrize(("n", "p"), CASES)
def test_draws_follow_the_binomial_distribution(n, p):
    k = _counts(n, p, seed=[n, round(p * 1000)])
    assert _chi_square_pvalue(k, n, p) > 1e-4
    mean, var = n * p, n * p * (1 - p)
    assert abs(k.mean() - mean) < 5 * np.sqrt(var / k.size)
    # standard error of the sample variance from the binomial's excess kurtosis
    var_se = var * np.sqrt((2 + (1 - 6 * p * (1 - p)) / var) / k.size)
    assert abs(k.var() - var) < 5 * var_se


def test_chi_square_notices_a_wrong_distribution():
    # the check above has power: draws for p = 0.3 fail against p = 0.305
    assert _chi_square_pvalue(_counts(400, 0.3, seed=1), 400, 0.305) < 1e-4


def test_certain_and_out_of_range_probabilities():
    n = np.array([1, 7, 400, 5_000_000])
    q = np.tile([0.0, 1.0, -0.5, 1.5, 1e-300, 1 - 1e-16], (4, 1))
    x = binomial_fractions(n, q, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(x[:, :4], np.tile([0.0, 1.0, 0.0, 1.0], (4, 1)))
    np.testing.assert_array_equal(x[:, 4], 0.0)
    np.testing.assert_array_equal(x[:, 5], 1.0)


def test_fractions_are_counts_over_n_in_the_unit_interval():
    rng = np.random.default_rng(2)
    n = rng.integers(1, 3000, size=40)
    x = binomial_fractions(n, rng.uniform(0, 1, (40, 500)), rng=rng)
    assert x.dtype == np.float64
    assert ((x >= 0) & (x <= 1)).all()
    k = np.round(x * n[:, None])
    np.testing.assert_array_equal(k / n[:, None], x)


def test_same_seed_same_draws_and_the_rng_advances():
    n = np.array([5, 40, 400])
    q = np.random.default_rng(0).uniform(0.05, 0.95, (3, 1000))
    a = binomial_fractions(n, q, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(a, binomial_fractions(n, q, rng=np.random.default_rng(7)))
    rng = np.random.default_rng(7)
    first = binomial_fractions(n, q, rng=rng)
    assert not np.array_equal(first, binomial_fractions(n, q, rng=rng))


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="numba has one thread")
def test_draws_do_not_depend_on_the_number_of_threads():
    rng = np.random.default_rng(4)
    n = rng.integers(1, 2000, size=70)  # inversion, BTRS and flips; blocks split rows
    q = rng.uniform(0, 1, (70, 3001))
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = binomial_fractions(n, q, rng=np.random.default_rng(9))
        numba.set_num_threads(2)
        two = binomial_fractions(n, q, rng=np.random.default_rng(9))
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(one, two)


def test_rows_keep_their_own_count_and_probabilities():
    # 3001 draws per row, so blocks of the flattened grid start mid-row
    rng = np.random.default_rng(5)
    n = np.tile([1, 5, 30, 400, 5000, 2_000_000], 4)
    q = rng.uniform(0, 1, (n.size, 3001)) ** rng.uniform(0.2, 3, (n.size, 1))
    x = binomial_fractions(n, q, rng=rng)
    np.testing.assert_array_equal(np.round(x * n[:, None]) / n[:, None], x)
    var = q * (1 - q) / n[:, None]
    z = (x.mean(axis=1) - q.mean(axis=1)) / np.sqrt(var.sum(axis=1)) * q.shape[1]
    assert np.abs(z).max() < 5
    # the spread around q is each row's own binomial one
    ratio = ((x - q) ** 2).mean(axis=1) / var.mean(axis=1)
    np.testing.assert_allclose(ratio, 1, atol=0.15)


def test_empty_grids():
    assert binomial_fractions(
        np.array([3]), np.empty((1, 0)), rng=np.random.default_rng()
    ).shape == (
        1,
        0,
    )
    out = binomial_fractions(np.empty(0, int), np.empty((0, 5)), rng=np.random.default_rng())
    assert out.shape == (0, 5)


def test_whole_float_counts_are_accepted():
    q = np.full((2, 50), 0.4)
    a = binomial_fractions(np.array([3.0, 50.0]), q, rng=np.random.default_rng(1))
    np.testing.assert_array_equal(
        a, binomial_fractions(np.array([3, 50]), q, rng=np.random.default_rng(1))
    )


@pytest.mark.parametrize(
    ("n_items", "q", "match"),
    [
        (np.array([[3]]), np.full((1, 2), 0.5), "1-D"),
        (np.array([3, 4]), np.full(2, 0.5), "shape"),
        (np.array([3, 4]), np.full((3, 2), 0.5), "shape"),
        (np.array([3, 0]), np.full((2, 2), 0.5), ">= 1"),
        (np.array([3, -2]), np.full((2, 2), 0.5), ">= 1"),
        (np.array([3.5, 4.0]), np.full((2, 2), 0.5), "whole"),
        (np.array([np.nan, 4.0]), np.full((2, 2), 0.5), "whole"),
        (np.array(["a", "b"]), np.full((2, 2), 0.5), "integers"),
        (np.array([3.0, 1e19]), np.full((2, 2), 0.5), "at most 2\\*\\*53"),
    ],
)
def test_bad_inputs_raise(n_items, q, match):
    with pytest.raises(ValueError, match=match):
        binomial_fractions(n_items, q, rng=np.random.default_rng(0))
