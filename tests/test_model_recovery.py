"""Parameter recovery: one moderate real fit on a simulated table with known truth."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.stats import spearmanr

from bayesproxy import datasets
from bayesproxy.errors import ConvergenceWarning
from bayesproxy.model import ProxyForecaster

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def recovered():
    sim = datasets.simulate(holdout_share=0.25, random_seed=0)  # 60 units x 8 proxies x 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fc = ProxyForecaster(target="target").fit(
            sim.table, draws=500, tune=500, chains=2, random_seed=2
        )
    return sim, fc


def test_alignment_and_stability_ordering(recovered):
    sim, fc = recovered
    w = fc.weights().set_index("proxy")
    truth = sim.truth
    assert spearmanr(w["alignment"], truth.alignment.to_series().loc[w.index]).statistic > 0.6
    assert spearmanr(w["stability"], truth.stability.to_series().loc[w.index]).statistic > 0.6


def test_held_out_target_inside_intervals(recovered):
    sim, fc = recovered
    f = fc.forecast(prob=0.9, kind="true").set_index("unit")  # intervals of the true score
    true = sim.truth.target_p.to_series().loc[f.index]
    inside = (true >= f["lower"]) & (true <= f["upper"])
    assert len(f) == 15
    assert inside.mean() >= 0.7
    assert np.mean(np.abs(f["mean"] - true)) < 0.05


def test_fitted_target_p_covers_truth(recovered):
    sim, fc = recovered
    post = fc.datatree["posterior"]["target_p"]
    lo = post.quantile(0.05, dim=("chain", "draw")).to_series()
    hi = post.quantile(0.95, dim=("chain", "draw")).to_series()
    true = sim.truth.target_p.to_series().loc[lo.index]
    assert ((true >= lo) & (true <= hi)).mean() >= 0.7
