"""Relevance / robustness formulas, the link fitters and the forecast frame, by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bayesproxy.errors import BayesproxyError
from bayesproxy.methods import (
    FORECAST_COLUMNS,
    Forecaster,
    MethodInputError,
    UnknownMethodError,
    available_methods,
    get_method,
    make_forecast_frame,
    range_distance,
)
from bayesproxy.methods.link import fit_sigmoid_link
from bayesproxy.methods.loss_accuracy import fit_power_law
from bayesproxy.methods.relevance import (
    model_pairs,
    pair_differences,
    relevance_scores,
    robustness_scores,
)

# four models; target and two candidates; the model pairs of the worked example
TARGET = np.array([0.10, 0.15, 0.40, 0.80])
PROXIES = pd.DataFrame({"a": [0.30, 0.35, 0.50, 0.70], "b": [0.50, 0.40, 0.45, 0.42]})
PAIRS = np.array([[0, 1], [1, 2], [2, 3], [0, 3]])


def test_pair_differences_by_hand():
    d_target = pair_differences(TARGET, PAIRS)
    np.testing.assert_allclose(d_target, [0.05, 0.25, 0.40, 0.70])
    np.testing.assert_allclose(
        pair_differences(PROXIES.to_numpy(), PAIRS)[:, 0], [0.05, 0.15, 0.20, 0.40]
    )


def test_relevance_on_given_pairs_matches_hand_worked_values():
    table = relevance_scores(PROXIES, TARGET, PAIRS)
    # candidate a: differences (0.05, 0.15, 0.20, 0.40) against (0.05, 0.25, 0.40, 0.70):
    # same order, so Spearman = Kendall = 1; Pearson by hand:
    da = np.array([0.05, 0.15, 0.20, 0.40])
    dt = np.array([0.05, 0.25, 0.40, 0.70])
    pearson = np.sum((da - da.mean()) * (dt - dt.mean())) / np.sqrt(
        np.sum((da - da.mean()) ** 2) * np.sum((dt - dt.mean()) ** 2)
    )
    assert table.loc["a", "pearson"] == pytest.approx(pearson)
    assert table.loc["a", "spearman"] == pytest.approx(1.0)
    assert table.loc["a", "kendall"] == pytest.approx(1.0)
    # candidate b: differences (-0.10, 0.05, -0.03, -0.08); ranks (1, 4, 3, 2) vs (1, 2, 3, 4)
    # Spearman = 1 - 6 * (0 + 4 + 0 + 4) / (4 * 15) = 0.2; Kendall: 3 concordant and 3
    # discordant of 6 pairs -> 0
    assert table.loc["b", "spearman"] == pytest.approx(0.2)
    assert table.loc["b", "kendall"] == pytest.approx(0.0)
    assert table["n_pairs"].tolist() == [4, 4]


def test_all_pairs_are_symmetric_and_order_free():
    pairs = model_pairs(4)
    assert len(pairs) == 12  # 6 unordered pairs, both orientations
    table = relevance_scores(PROXIES, TARGET, pairs)
    order = [2, 0, 3, 1]
    shuffled = relevance_scores(PROXIES.iloc[order], TARGET[order], model_pairs(4))
    pd.testing.assert_frame_equal(table, shuffled)
    d_b = pair_differences(PROXIES["b"].to_numpy(), pairs)
    d_t = pair_differences(TARGET, pairs)
    assert table.loc["b", "kendall"] == pytest.approx(stats.kendalltau(d_b, d_t).statistic)
    assert table.loc["b", "pearson"] == pytest.approx(stats.pearsonr(d_b, d_t).statistic)


def test_pairs_within_runs_and_bootstrap_copies():
    groups = np.array(["r1", "r1", "r2", "r2", "r2"])
    assert model_pairs(5, groups=groups, symmetric=False).tolist() == [
        [0, 1],
        [2, 3],
        [2, 4],
        [3, 4],
    ]
    # rows 0 and 1 are copies of the same unit: that pair is dropped
    assert model_pairs(3, source=np.array([7, 7, 9]), symmetric=False).tolist() == [
        [0, 2],
        [1, 2],
    ]


def test_relevance_drops_pairs_with_missing_scores():
    proxies = pd.DataFrame({"a": [0.1, np.nan, 0.3, 0.5, 0.6]})
    target = np.array([0.0, 0.2, 0.1, 0.4, 0.5])
    table = relevance_scores(proxies, target, model_pairs(5, symmetric=False))
    assert table.loc["a", "n_pairs"] == 6  # pairs not touching unit 1


def test_unknown_relevance_metric_is_a_bayesproxy_error():
    with pytest.raises(MethodInputError, match="unknown relevance metric"):
        relevance_scores(PROXIES, TARGET, PAIRS, metrics=["cosine"])


def test_robustness_from_replicates_and_from_stderr():
    means = pd.DataFrame({"steady": [0.2, 0.4, 0.6], "shaky": [0.2, 0.4, 0.6], "none": [1, 2, 3]})
    rep_sd = pd.DataFrame({"steady": [0.02] * 3, "shaky": [0.1] * 3, "none": [np.nan] * 3})
    stderr = pd.DataFrame({"steady": [0.5] * 3, "shaky": [0.5] * 3, "none": [np.nan] * 3})
    table = robustness_scores(means, replicate_sd=rep_sd, stderr=stderr)
    # between-unit SD of (0.2, 0.4, 0.6) is 0.2: 1 - (0.02 / 0.2)^2 and 1 - (0.1 / 0.2)^2
    assert table.loc["steady", "robustness"] == pytest.approx(0.99)
    assert table.loc["shaky", "robustness"] == pytest.approx(0.75)
    assert table.loc["steady", "source"] == "replicates"
    assert np.isnan(table.loc["none", "robustness"])
    from_stderr = robustness_scores(means[["steady"]], stderr=pd.DataFrame({"steady": [0.05] * 3}))
    assert from_stderr.loc["steady", "robustness"] == pytest.approx(1 - 0.25**2)
    assert from_stderr.loc["steady", "source"] == "stderr"
    uneven = robustness_scores(
        means[["steady"]], replicate_sd=pd.DataFrame({"steady": [0.0, 0.1, 0.1]})
    )
    # mean within-unit variance (0 + 0.01 + 0.01) / 3 against between-unit variance 0.04
    assert uneven.loc["steady", "robustness"] == pytest.approx(1 - (0.02 / 3) / 0.04)


def test_sigmoid_link_recovers_its_parameters():
    rng = np.random.default_rng(3)
    x = rng.uniform(20, 25, 80)
    y = 0.25 + 0.75 / (1 + np.exp(-(-45.0 + 2.0 * x))) + rng.normal(0, 0.01, 80)
    link = fit_sigmoid_link(x, y, chance=0.25)
    assert link.b == pytest.approx(2.0, rel=0.1)
    assert -link.a / link.b == pytest.approx(22.5, abs=0.05)  # the midpoint
    far = link(np.array([-1e3, 1e3]))
    np.testing.assert_allclose(far, [0.25, 1.0])  # bounded by [chance, ceiling]


def test_sigmoid_link_matrix_input_and_monotone_constraint():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(100, 2))
    y = 1 / (1 + np.exp(-(0.5 + x @ np.array([1.5, -1.0])))) + rng.normal(0, 0.01, 100)
    free = fit_sigmoid_link(x, y, increasing=False)
    np.testing.assert_allclose(free.b, [1.5, -1.0], atol=0.15)
    monotone = fit_sigmoid_link(x, y, increasing=True)
    assert np.all(monotone.b >= 0)


def test_sigmoid_link_rejects_unusable_input():
    with pytest.raises(MethodInputError, match="at least"):
        fit_sigmoid_link(np.array([1.0, 2.0]), np.array([0.1, 0.2]))
    with pytest.raises(MethodInputError, match="constant"):
        fit_sigmoid_link(np.ones(5), np.linspace(0, 1, 5))
    with pytest.raises(MethodInputError, match="chance"):
        fit_sigmoid_link(np.arange(5.0), np.linspace(0, 1, 5), chance=1.0)


def test_power_law_recovers_exponent_and_floor():
    x = np.linspace(19, 23, 25)
    loss = 1.8 + 40.0 * (10.0**x) ** -0.07
    law = fit_power_law(x, loss)
    assert law.alpha == pytest.approx(0.07, rel=0.05)
    assert law.e == pytest.approx(1.8, abs=0.05)
    np.testing.assert_allclose(law(x), loss, rtol=1e-3)


def test_range_distance_in_training_sds():
    train = np.array([0.0, 1.0, 2.0, 3.0])  # SD (ddof=1) = 1.29
    distance, outside = range_distance(np.array([1.5, 3.0, 5.0, -1.29099]), train)
    np.testing.assert_allclose(distance, [0, 0, 2 / 1.2909944, 1.0], atol=1e-4)
    assert outside.tolist() == [False, False, True, True]


def test_forecast_frame_columns_and_no_uncertainty():
    frame = make_forecast_frame(
        ["a", "b"], model=["a", "b"], step=[1.0, 2.0], mean=np.array([0.3, 0.7])
    )
    assert list(frame.columns) == list(FORECAST_COLUMNS)
    assert frame["lower"].isna().all() and frame["p_above"].isna().all()
    assert frame["median"].tolist() == [0.3, 0.7]
    with pytest.raises(BayesproxyError, match="prob"):
        make_forecast_frame(["a"], model=["a"], step=[1.0], mean=np.array([0.3]), prob=1.5)


def test_forecast_frame_intervals_from_samples():
    samples = np.tile(np.linspace(0, 1, 101), (1, 1))
    frame = make_forecast_frame(
        ["a"],
        model=["a"],
        step=[np.nan],
        mean=np.array([0.5]),
        samples=samples,
        prob=0.8,
        threshold=0.75,
        distance=np.array([0.5]),
    )
    assert frame.loc[0, "lower"] == pytest.approx(0.1)
    assert frame.loc[0, "upper"] == pytest.approx(0.9)
    assert frame.loc[0, "p_above"] == pytest.approx(25 / 101)
    assert bool(frame.loc[0, "extrapolation"])


def test_registry_names_and_lazy_bayes():
    names = available_methods()
    for name in (
        "proxy-bayes",
        "proxy-selection",
        "weighted-ensemble",
        "compute-sigmoid",
        "pca-sigmoid",
        "loss-accuracy",
        "mean-proxy-sigmoid",
    ):
        assert name in names
    for name in names:
        if name == "proxy-bayes":
            continue
        forecaster = get_method(name, target="t")
        assert forecaster.name == name
        assert isinstance(forecaster, Forecaster)
    with pytest.raises(UnknownMethodError, match="did you mean 'pca-sigmoid'"):
        get_method("pca-sigmod")


def test_forecast_frame_unit_without_usable_draws_is_nan():
    samples = np.vstack([np.linspace(0, 1, 11), np.full(11, np.nan)])
    frame = make_forecast_frame(
        ["a", "b"],
        model=["a", "b"],
        step=[np.nan] * 2,
        mean=np.array([0.5, np.nan]),
        samples=samples,
        threshold=0.5,
    )
    assert frame.loc[0, "p_above"] == pytest.approx(5 / 11)
    assert np.isnan(frame.loc[1, ["median", "lower", "upper", "p_above"]].astype(float)).all()


def test_listing_and_building_baselines_does_not_import_pymc():
    import subprocess
    import sys

    code = (
        "import sys; from bayesproxy.methods import available_methods, get_method; "
        "available_methods(); get_method('proxy-selection', target='t'); "
        "print('pymc' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
