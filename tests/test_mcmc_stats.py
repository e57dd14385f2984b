"""The vectorised R-hat and ESS of the convergence gate give ArviZ's figures."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from arviz_stats.base.array import array_stats

from bayesproxy.model.mcmc_stats import diagnose


def _ar1(rng: np.random.Generator, phi: float, shape: tuple[int, int, int]) -> np.ndarray:
    e = rng.normal(size=shape)
    x = np.zeros(shape)
    for t in range(1, shape[1]):
        x[:, t] = phi * x[:, t - 1] + e[:, t]
    return x


def _cases() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    cases = [_ar1(rng, phi, (4, 301, 4)) for phi in (0.0, 0.6, 0.95, 0.995, -0.5)]
    odd = rng.normal(size=(4, 200, 5))
    odd[..., 0] = 3.0  # constant
    odd[1, :, 1] += 5.0  # one stuck chain
    odd[..., 2] = np.round(odd[..., 2])  # many ties
    odd[0, 3, 3] = np.nan  # a NaN draw
    cases.append(odd)
    cases += [rng.normal(size=s) for s in ((2, 7, 3), (1, 50, 2), (4, 3, 2))]
    return cases


@pytest.mark.parametrize("case", range(len(_cases())))
def test_same_figures_as_arviz(case):
    x = _cases()[case]
    per_quantity = np.moveaxis(x, 2, 0)  # ArviZ's array layout (..., chain, draw)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        expected = (
            array_stats.rhat(per_quantity),
            array_stats.ess(per_quantity, method="bulk"),
            array_stats.ess(per_quantity, method="tail", prob=(0.05, 0.95)),
        )
        got = diagnose(x)
    for name, a, c in zip(("rhat", "bulk", "tail"), got, expected, strict=True):
        np.testing.assert_allclose(a, c, rtol=1e-9, atol=1e-9, equal_nan=True, err_msg=name)


def test_flags_a_stuck_chain():
    x = np.random.default_rng(1).normal(size=(4, 500, 2))
    x[0, :, 1] += 1.0
    rhat, bulk, _ = diagnose(x)
    assert rhat[0] < 1.01 < rhat[1]
    assert bulk[0] > 1500


def test_rejects_wrong_shape():
    with pytest.raises(ValueError, match="chains, draws, quantities"):
        diagnose(np.zeros((4, 100)))


def test_nan_folded_rhat_leaves_the_bulk_one_as_arviz_does():
    # two values symmetric about the median: |x - median| is constant, its R-hat 0/0
    x = np.zeros((4, 100))
    x[0] = 1.0
    x[1, :50] = 1.0
    x[2, ::2] = 1.0
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        expected = array_stats.rhat(x)
    assert np.isfinite(expected)
    np.testing.assert_allclose(diagnose(x[..., None])[0], [expected], rtol=1e-12)


def test_blocks_of_quantities_give_the_same_figures(monkeypatch):
    x = np.random.default_rng(3).normal(size=(3, 60, 7)).cumsum(axis=1)
    whole = diagnose(x)
    monkeypatch.setattr("bayesproxy.model.mcmc_stats.QUANTITY_BLOCK", 2)
    for a, b in zip(whole, diagnose(x), strict=True):
        np.testing.assert_array_equal(a, b)


def test_gate_and_report_judge_with_the_same_figures():
    import xarray as xr

    from bayesproxy.model.convergence import check_convergence
    from bayesproxy.report.content import convergence_verdict

    rng = np.random.default_rng(1)
    # a sticky upper tail: the tail ESS sits near the floor
    y = rng.normal(size=(4, 1000))
    y[:, 1:][y[:, :-1] > 1.9] = 2.5
    post = xr.Dataset(
        {"y": (("chain", "draw"), y), "z": (("chain", "draw", "k"), rng.normal(size=(4, 1000, 3)))}
    )
    dt = xr.DataTree.from_dict({"posterior": post})
    gate = check_convergence(dt, var_names=["y", "z"]).table
    _, _, report = convergence_verdict(dt)
    report = report.set_index("variable")
    np.testing.assert_allclose(report["min_ess_tail"], gate["ess_tail"])
    np.testing.assert_allclose(report["min_ess_bulk"], gate["ess_bulk"])
    np.testing.assert_allclose(report["max_rhat"], gate["rhat"])
