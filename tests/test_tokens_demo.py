"""Token metrics carry ranking signal while task accuracy is still at chance."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from bayesproxy.tokens.demo import SyntheticLanguage, ranking_demo, train_bigram


@pytest.fixture(scope="module")
def demo():
    return ranking_demo()


@pytest.mark.parametrize(
    "metric",
    [
        "tokens.cross_entropy.uniform",
        "tokens.rank.uniform",
        "tokens.entropy.uniform",
        "tokens.top5.uniform",
        "tokens.top5.frequency",
        "tokens.cross_entropy.inverse_frequency",
        "tokens.reciprocal_rank.uniform",
    ],
)
def test_token_metrics_order_checkpoints_by_training_step(demo, metric):
    _, ranking = demo
    assert ranking.loc[metric, "spearman"] >= 0.9


def test_task_accuracy_stays_at_chance(demo):
    table, ranking = demo
    n_eval = 400
    for accuracy in table["task_accuracy"]:
        hits = round(accuracy * n_eval)
        assert sps.binomtest(hits, n_eval, 0.25).pvalue > 0.01
    # the token metrics beat the task at ranking the checkpoints
    assert ranking.loc["tokens.cross_entropy.uniform", "spearman"] > abs(
        ranking.loc["task_accuracy", "spearman"]
    )


def test_answers_follow_the_multi_step_rule():
    lang = SyntheticLanguage.create(n_words=6, n_answers=3, length=5, seed=4)
    seq = lang.sample(50, rng=np.random.default_rng(1))
    assert (seq[:, -2] == lang.equals).all()
    np.testing.assert_array_equal(seq[:, -1], lang.equals + 1 + seq[:, :5].sum(axis=1) % 3)
    # words follow the chain: never a transition of probability zero
    sparse = SyntheticLanguage(transition=np.array([[0.0, 1.0], [1.0, 0.0]]), n_answers=2, length=6)
    words = sparse.sample(10, rng=np.random.default_rng(2))[:, :6]
    assert (np.diff(words, axis=1) != 0).all()


def test_training_lowers_training_loss():
    lang = SyntheticLanguage.create(seed=3)
    seq = lang.sample(200, rng=np.random.default_rng(0))
    tables = train_bigram(seq, vocab_size=lang.vocab_size, checkpoints=[0, 100, 1000])

    def loss(table):
        logits = table[seq[:, :-1]]
        logp = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
        return -np.take_along_axis(logp, seq[:, 1:, None], axis=-1).mean()

    assert loss(tables[0]) > loss(tables[100]) > loss(tables[1000])
