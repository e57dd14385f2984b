"""The compiled cell summaries of a design against a plain per-cell reference."""

from __future__ import annotations

import math

import numpy as np

from bayesproxy.model.design import ACCURACY_EPS
from bayesproxy.model.design import _transform as design_transform
from bayesproxy.model.design_loops import IDENTITY, LOG, LOGIT, cell_summaries

EPS = ACCURACY_EPS


def _reference(score, stderr, kind, chance, sign, center, scale):
    """Cell by cell, as the model defines them (delta-method standard errors)."""
    units, proxies, _ = score.shape
    mean, ss, se2 = (np.full((units, proxies), np.nan) for _ in range(3))
    n = np.zeros((units, proxies), dtype=int)
    for i in range(units):
        for k in range(proxies):
            latent, errors = [], []
            for v, e in zip(score[i, k], stderr[i, k], strict=True):
                with np.errstate(all="ignore"):
                    if kind[k] == LOGIT:
                        r = min(max((v - chance[k]) / (1 - chance[k]), EPS), 1 - EPS)
                        t, d = math.log(r / (1 - r)), 1 / ((1 - chance[k]) * r * (1 - r))
                    elif kind[k] == LOG:
                        t, d = sign[k] * np.log(v), 1 / abs(v)
                    else:
                        t, d = sign[k] * v, 1.0
                t = (t - center[k]) / scale[k]
                if np.isfinite(t):
                    latent.append(t)
                    if not np.isnan(e):
                        errors.append((e * d / scale[k]) ** 2)
            n[i, k] = len(latent)
            if latent:
                mean[i, k] = np.mean(latent)
                ss[i, k] = np.sum((np.array(latent) - mean[i, k]) ** 2)
            else:
                ss[i, k] = 0.0
            if errors:
                se2[i, k] = np.mean(errors)
    return mean, ss, se2, n


def test_cell_summaries_match_the_reference_cell_by_cell():
    rng = np.random.default_rng(0)
    units, replicates = 40, 3
    kind = np.array([LOGIT, LOGIT, LOG, IDENTITY, IDENTITY])
    chance = np.array([0.25, 0.0, 0.0, 0.0, 0.0])
    sign = np.array([1.0, 1.0, -1.0, 1.0, -1.0])
    center = rng.normal(size=5)
    scale = rng.uniform(0.5, 2.0, size=5)
    score = np.stack(
        [
            rng.uniform(0.0, 1.0, (units, replicates)),  # below chance: clipped
            rng.uniform(0.0, 1.0, (units, replicates)),
            rng.uniform(0.5, 4.0, (units, replicates)),  # a loss
            rng.normal(size=(units, replicates)),
            rng.normal(size=(units, replicates)),
        ],
        axis=1,
    )
    stderr = rng.uniform(0.01, 0.1, score.shape)
    score[rng.uniform(size=score.shape) < 0.25] = np.nan  # missing replicates and cells
    score[0, 3, :] = np.nan  # a cell with no replicate at all
    score[1, 4, 0] = np.inf  # an infinite transformed score leaves its cell
    score[2, 0, 0] = np.inf  # an infinite accuracy is clipped and counts
    score[3, 2, 0] = -np.inf  # the log of -inf is NaN: it leaves the cell
    stderr[rng.uniform(size=score.shape) < 0.3] = np.nan  # errors known for some only
    stderr[4, 1, :] = np.inf  # an infinite error is known: the cell's se2 is inf
    score[4, 1, :] = 0.5

    got = cell_summaries(
        score, stderr, kind=kind, chance=chance, sign=sign, center=center, scale=scale, eps=EPS
    )
    expected = _reference(score, stderr, kind, chance, sign, center, scale)
    for name, a, b in zip(("mean", "ss", "se2", "n"), got, expected, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14, err_msg=name)
    assert got[3][0, 3] == 0 and np.isnan(got[0][0, 3])
    assert got[3][1, 4] == np.isfinite(score[1, 4, 1:]).sum()
    assert got[3][2, 0] == 1 + np.isfinite(score[2, 0, 1:]).sum()
    assert got[3][3, 2] == np.isfinite(score[3, 2, 1:]).sum()
    assert got[2][4, 1] == np.inf


def test_cell_summaries_transform_as_the_scaling_does():
    # design._transform fits the scaling; the compiled pass must transform the same way
    rng = np.random.default_rng(1)
    values = np.concatenate([rng.uniform(0.0, 1.0, 50), [0.0, 1.0, 0.25]])
    for kind, code, chance, sign, raw in (
        ("logit", LOGIT, 0.25, 1.0, values),
        ("log", LOG, 0.0, -1.0, values + 0.1),
        ("identity", IDENTITY, 0.0, -1.0, values - 0.5),
    ):
        mean, *_ = cell_summaries(
            raw.reshape(-1, 1, 1),
            np.full((raw.size, 1, 1), np.nan),
            kind=np.array([code]),
            chance=np.array([chance]),
            sign=np.array([sign]),
            center=np.array([0.0]),
            scale=np.array([1.0]),
            eps=ACCURACY_EPS,
        )
        expected = design_transform(raw, kind, chance, sign)
        np.testing.assert_allclose(mean[:, 0], expected, rtol=1e-13, atol=1e-13, err_msg=kind)


def test_cell_summaries_take_any_layout_and_dtype():
    # the wrapper makes its inputs contiguous float64 / int64, whatever comes in
    score = np.asfortranarray(np.full((2, 1, 2), 0.6, dtype=np.float32))
    kind = np.array([LOGIT], dtype=np.int8)
    mean, ss, se2, n = cell_summaries(
        score,
        np.full(score.shape, np.nan),
        kind=kind,
        chance=[0.0],
        sign=[1.0],
        center=[0.0],
        scale=[1.0],
        eps=EPS,
    )
    assert mean.shape == (2, 1) and n.tolist() == [[2], [2]]
    np.testing.assert_allclose(mean, math.log(0.6 / 0.4), rtol=1e-6)
    assert np.isnan(se2).all() and np.allclose(ss, 0.0)
