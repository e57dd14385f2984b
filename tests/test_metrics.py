"""Each backtest metric against hand-worked examples (and SciPy where it has the same)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from bayesproxy.backtest import metrics as m
from bayesproxy.errors import BayesproxyError


def test_mae_rmse_hand_worked():
    pred = [0.1, 0.4, 0.9]
    actual = [0.2, 0.2, 0.5]
    # errors 0.1, 0.2, 0.4
    assert m.mae(pred, actual) == pytest.approx(0.7 / 3)
    assert m.rmse(pred, actual) == pytest.approx(np.sqrt((0.01 + 0.04 + 0.16) / 3))


def test_nan_actuals_are_skipped_and_empty_is_nan():
    assert m.mae([0.1, 5.0], [0.2, np.nan]) == pytest.approx(0.1)
    assert np.isnan(m.mae([1.0], [np.nan]))
    assert np.isnan(m.rmse([], []))


def test_length_mismatch_raises():
    with pytest.raises(BayesproxyError, match="2 values but actual has 3"):
        m.mae([1, 2], [1, 2, 3])


def test_spearman_hand_worked_and_ties():
    # ranks (1,2,3,4) vs (1,2,4,3): d^2 = 0+0+1+1 = 2 -> 1 - 6*2/(4*(16-1)) = 0.8
    assert m.spearman([1, 2, 3, 4], [10, 20, 40, 30]) == pytest.approx(0.8)
    # ties use average ranks: pred ranks (1.5,1.5,3), actual (1,2,3) -> Pearson of those
    r = np.corrcoef([1.5, 1.5, 3], [1, 2, 3])[0, 1]
    assert m.spearman([5, 5, 7], [1, 2, 3]) == pytest.approx(r)
    rng = np.random.default_rng(3)
    x, y = rng.integers(0, 5, 30), rng.normal(size=30)
    assert m.spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic)


def test_spearman_kendall_undefined_cases():
    assert np.isnan(m.spearman([1, 2], [1, 2]))  # too few units
    assert np.isnan(m.spearman([1, 1, 1], [1, 2, 3]))  # constant forecast
    assert np.isnan(m.kendall([1, 2, 3], [4, 4, 4]))


def test_kendall_hand_worked_and_tau_b():
    # pairs of (1,2,3,4) vs (10,20,40,30): 5 concordant, 1 discordant -> 4/6
    assert m.kendall([1, 2, 3, 4], [10, 20, 40, 30]) == pytest.approx(4 / 6)
    assert m.kendall([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    # ties: pred (1,1,2) vs actual (1,2,3): pairs (0,1) tied in pred, (0,2) +, (1,2) +
    # tau-b = 2 / sqrt(2 * 3)
    assert m.kendall([1, 1, 2], [1, 2, 3]) == pytest.approx(2 / np.sqrt(6))
    rng = np.random.default_rng(4)
    x, y = rng.integers(0, 4, 25), rng.integers(0, 6, 25)
    assert m.kendall(x, y) == pytest.approx(stats.kendalltau(x, y).statistic)


def test_pairwise_ranking_accuracy_hand_worked():
    # pairs: (a,b) right, (a,c) right, (b,c) wrong -> 2/3
    assert m.pairwise_ranking_accuracy([1, 2, 3], [1, 3, 2]) == pytest.approx(2 / 3)
    # forecast tie counts one half; actual tie is skipped:
    # pred (1,1,2), actual (1,2,2): (0,1) pred tie -> 0.5; (0,2) right -> 1; (1,2) skipped
    assert m.pairwise_ranking_accuracy([1, 1, 2], [1, 2, 2]) == pytest.approx(0.75)
    assert np.isnan(m.pairwise_ranking_accuracy([1, 2], [3, 3]))


def test_interval_coverage_and_width_hand_worked():
    samples = np.tile(np.arange(5.0), (3, 1))  # quantiles: 50% -> [1, 3]; 80% -> [0.4, 3.6]
    actual = [2.0, 3.5, -1.0]
    assert m.interval_coverage(samples, actual, prob=0.5) == pytest.approx(1 / 3)
    assert m.interval_coverage(samples, actual, prob=0.8) == pytest.approx(2 / 3)
    assert m.interval_width(samples, actual, prob=0.5) == pytest.approx(2.0)
    assert m.interval_width(samples, actual, prob=0.8) == pytest.approx(3.2)
    assert np.isnan(m.interval_coverage(None, actual, prob=0.9))
    assert np.isnan(m.interval_width(None, actual, prob=0.9))


def test_interval_rejects_bad_prob_and_shape():
    with pytest.raises(BayesproxyError, match="prob"):
        m.interval_coverage([[0.0, 1.0]], [0.5], prob=1.0)
    with pytest.raises(BayesproxyError, match="shape"):
        m.interval_coverage([0.0, 1.0], [0.5], prob=0.5)


def test_coverage_is_calibrated_for_a_correct_predictive():
    rng = np.random.default_rng(0)
    mu = rng.normal(size=2000)
    actual = mu + rng.normal(size=2000)
    samples = mu[:, None] + rng.normal(size=(2000, 400))
    for p in (0.5, 0.8, 0.9):
        assert m.interval_coverage(samples, actual, prob=p) == pytest.approx(p, abs=0.03)


def test_crps_hand_worked():
    # samples {0, 1}, y = 0: E|X-y| = 0.5; E|X-X'| over 4 ordered pairs = 2/4 -> 0.5 - 0.25
    assert m.crps([[0.0, 1.0]], [0.0]) == pytest.approx(0.25)
    # samples {0, 1, 2}, y = 2: E|X-y| = 1; E|X-X'| = (0+1+2+1+0+1+2+1+0)/9 = 8/9
    assert m.crps([[0.0, 1.0, 2.0]], [2.0]) == pytest.approx(1 - 4 / 9)
    # one sample: CRPS is the absolute error
    assert m.crps([[0.3]], [0.0]) == pytest.approx(0.3)


def test_crps_matches_gaussian_closed_form():
    # CRPS(N(0,1), y) = y(2Φ(y)-1) + 2φ(y) - 1/sqrt(pi)
    y = 0.7
    closed = y * (2 * stats.norm.cdf(y) - 1) + 2 * stats.norm.pdf(y) - 1 / np.sqrt(np.pi)
    draws = stats.norm.ppf((np.arange(20000) + 0.5) / 20000)[None, :]
    assert m.crps(draws, [y]) == pytest.approx(closed, abs=1e-3)


def test_crps_point_is_absolute_error_and_spread_can_beat_it():
    assert m.crps_point([0.5, 0.1], [0.0, 0.3]) == pytest.approx(0.35)
    # a spread centred on the truth beats a point that misses
    assert m.crps([[-0.1, 0.1]], [0.0]) < m.crps_point([0.1], [0.0])


def test_elpd_sums_finite_log_densities():
    assert m.elpd([-1.0, -0.5, np.nan]) == pytest.approx(-1.5)
    assert np.isnan(m.elpd(None))
    assert np.isnan(m.elpd([np.nan]))
