"""Ranks from one sort, plain and folded, equal SciPy's average ranks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import rankdata

from bayesproxy.model.rank_loops import folded_twice_ranks, twice_ranks


def _rows() -> np.ndarray:
    rng = np.random.default_rng(0)
    continuous = rng.normal(size=(3, 257))
    ties = np.round(rng.normal(size=(3, 256)) * 2.0)  # many ties, on both sides of 0
    constant = np.zeros((1, 256))
    mixed = np.concatenate([ties[:1], continuous[:1, :256]], axis=0)
    return [continuous, ties, constant, mixed, np.array([[-0.0, 0.0, 1.0, -1.0]])]


@pytest.mark.parametrize("case", range(len(_rows())))
def test_twice_ranks_are_scipys_average_ranks(case):
    values = _rows()[case]
    order = np.argsort(values, axis=1)
    expected = 2 * rankdata(values, method="average", axis=1) - 2
    np.testing.assert_array_equal(twice_ranks(values, order), expected)


@pytest.mark.parametrize("case", range(len(_rows())))
@pytest.mark.parametrize("centre", ["median", "off"])
def test_folded_ranks_need_no_second_sort(case, centre):
    values = _rows()[case]
    median = np.median(values, axis=1)
    if centre == "off":  # any centre: between the values, or outside them
        median = median + np.resize([0.25, -7.0, 3.0], len(median))
    order = np.argsort(values, axis=1)
    expected = 2 * rankdata(np.abs(values - median[:, None]), method="average", axis=1) - 2
    np.testing.assert_array_equal(folded_twice_ranks(values, order, median), expected)
