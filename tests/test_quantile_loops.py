"""The compiled row quantiles against NumPy's: equal values on the shapes that break bucketing."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from bayesproxy.methods.base import _COMPILED_QUANTILES, make_forecast_frame
from bayesproxy.methods.quantile_loops import row_quantiles

PROBS = [(0.05, 0.5, 0.95), (0.0, 0.25, 1.0), (0.1,)]


def _cases() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        # discrete scores with many ties, as Binomial observed scores are
        "binomial": rng.binomial(400, rng.uniform(0.3, 0.8, (300, 1)) * np.ones((1, 1000))) / 400,
        "normal": rng.normal(size=(300, 1000)),
        # most values in one bucket, a few far out
        "heavy tails": rng.standard_cauchy(size=(300, 1000)),
        "three values": rng.integers(0, 3, (100, 1000)).astype(float),
        "constant": np.full((20, 1000), 0.25),
        "range of a few ulp": 1.0 + rng.integers(0, 3, (20, 1000)) * np.finfo(float).eps,
        "subnormal range": rng.integers(0, 3, (20, 1000)) * 5e-324,
        "overflowing range": rng.choice([-1.7e308, 0.0, 1.7e308], (20, 1000)),
        "odd draws": rng.normal(size=(50, 7)),
        "one draw": rng.normal(size=(50, 1)),
    }


@pytest.mark.parametrize("name", list(_cases()))
@pytest.mark.parametrize("probs", PROBS)
def test_row_quantiles_equal_numpy_bit_for_bit(name, probs):
    x = _cases()[name]
    values, ok = row_quantiles(x, probs)
    assert ok.all()
    np.testing.assert_array_equal(values, np.quantile(x, probs, axis=1))


def test_rows_with_nan_or_inf_are_left_to_the_caller():
    x = np.random.default_rng(1).normal(size=(6, 50))
    x[1, 3], x[2], x[4, 0] = np.nan, np.nan, np.inf
    _, ok = row_quantiles(x, (0.5,))
    assert ok.tolist() == [True, False, False, True, False, True]


def test_bad_shape_or_probs_are_refused():
    with pytest.raises(ValueError, match="shape"):
        row_quantiles(np.zeros(5), (0.5,))
    with pytest.raises(ValueError, match="shape"):
        row_quantiles(np.zeros((3, 0)), (0.5,))
    for probs in [(-0.5,), (1.5,), (np.nan,), [[0.5]]]:
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            row_quantiles(np.zeros((3, 4)), probs)


def test_forecast_frame_on_many_draws_matches_nanquantile():
    """Above the size where the compiled pass runs: finite rows there, the others by NumPy."""
    rng = np.random.default_rng(2)
    samples = rng.normal(size=(_COMPILED_QUANTILES // 500 + 10, 500))
    samples[1, 7] = np.nan  # a few NaN draws: nanquantile
    samples[4] = np.nan  # no usable draw: NaN, no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frame = make_forecast_frame(
            [str(i) for i in range(len(samples))],
            model=[""] * len(samples),
            step=np.zeros(len(samples)),
            mean=np.zeros(len(samples)),
            samples=samples,
            prob=0.8,
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        alpha = (1.0 - 0.8) / 2.0  # as the frame computes it (not exactly 0.1)
        expected = np.nanquantile(samples, (alpha, 0.5, 1.0 - alpha), axis=1)
    for column, values in zip(("lower", "median", "upper"), expected, strict=True):
        np.testing.assert_array_equal(frame[column].to_numpy(), values)
