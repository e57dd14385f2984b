"""Row blocks on threads: coverage, errors, and draws independent of the number of threads."""

from __future__ import annotations

import numpy as np
import pytest

from bayesproxy import threads
from bayesproxy.model.predictive import observed_score_draws


def test_row_blocks_cover_every_row_once():
    blocks = threads.row_blocks(10, block=3)
    assert [(b.start, b.stop) for b in blocks] == [(0, 3), (3, 6), (6, 9), (9, 10)]
    assert threads.row_blocks(0) == []


def test_for_row_blocks_runs_every_block_and_raises_their_errors(monkeypatch):
    monkeypatch.setattr(threads, "usable_cpus", lambda: 2)
    seen = np.zeros(50, dtype=int)

    def mark(rows: slice) -> None:
        seen[rows] += 1

    threads.for_row_blocks(mark, 50, block=7)
    assert (seen == 1).all()

    def fail(rows: slice) -> None:
        if rows.start >= 7:
            raise ValueError(f"block at {rows.start}")

    with pytest.raises(ValueError, match="block at"):
        threads.for_row_blocks(fail, 50, block=7)


def test_binomial_scores_do_not_depend_on_the_number_of_threads(monkeypatch):
    monkeypatch.setattr(threads, "ROW_BLOCK", 8)
    q = np.random.default_rng(0).uniform(0.2, 0.9, size=(30, 200))
    n = np.arange(30) + 10.0

    def draw(cpus: int) -> np.ndarray:
        monkeypatch.setattr(threads, "usable_cpus", lambda: cpus)
        return observed_score_draws(
            q, likelihood="binomial", n_items=n, rng=np.random.default_rng(3)
        )

    one, two = draw(1), draw(2)
    np.testing.assert_array_equal(one, two)
    # the scores are Binomial(n, q) / n: their mean is q's within Monte Carlo error
    assert np.abs(one.mean(axis=1) - q.mean(axis=1)).max() < 0.05


def test_generators_without_a_seed_sequence_still_spawn():
    legacy = np.random.Generator(np.random.RandomState(0)._bit_generator)
    children = threads.spawn(legacy, 3)
    assert len(children) == 3
    assert len({int(c.integers(2**62)) for c in children}) == 3
