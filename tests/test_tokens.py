"""Token statistics and weightings against plain loop-by-loop reference implementations."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bayesproxy.errors import BayesproxyError
from bayesproxy.tokens import (
    STATISTICS,
    WEIGHTINGS,
    TokenInputError,
    instance_scores,
    task_scores,
    token_frequencies,
    token_statistics,
    token_weights,
)

# ---------------------------------------------------------------- reference implementation


def reference_token(row: np.ndarray, expert: int) -> dict[str, float]:
    """Every statistic of one row of logits, written out the obvious way."""
    row = np.asarray(row, dtype=np.float64)
    p = np.exp(row - row.max())
    p = p / p.sum()
    rank = 1 + sum(1 for v in range(row.size) if p[v] > p[expert])
    entropy = -sum(q * math.log(q) for q in p if q > 0) / math.log(row.size)
    out = {
        "cross_entropy": -math.log(p[expert]) if p[expert] > 0 else math.inf,
        "entropy": entropy,
        "rank": float(rank),
        "reciprocal_rank": 1.0 / rank,
        "margin": p.max() - p[expert],
        "wrong_confidence": p.max() if rank > 1 else math.nan,
    }
    for k in (1, 2, 3, 5):
        out[f"top{k}"] = 1.0 if rank <= k else 0.0
    return out


def reference_statistics(logits, ids, mask) -> dict[str, np.ndarray]:
    lead = ids.shape
    out = {name: np.full(lead, np.nan) for name in STATISTICS}
    for pos in np.ndindex(*lead):
        if mask[pos]:
            for name, value in reference_token(logits[pos], int(ids[pos])).items():
                out[name][pos] = value
    return out


def reference_weight(stat: dict[str, float], weighting: str, count: int) -> float:
    p = math.exp(-stat["cross_entropy"])
    return {
        "uniform": 1.0,
        "p": p,
        "one_minus_p": 1.0 - p,
        "entropy": stat["entropy"],
        "inverse_entropy": 1.0 / (stat["entropy"] + 1e-3),
        "frequency": float(count),
        "inverse_frequency": 1.0 / count,
    }[weighting]


def reference_instance_scores(logits, ids, mask, weighting, last_n):
    """Loop over instances; keep the last ``last_n`` scored tokens; weighted mean."""
    counts: dict[int, int] = {}
    for pos in np.ndindex(*ids.shape):
        if mask[pos]:
            counts[int(ids[pos])] = counts.get(int(ids[pos]), 0) + 1
    result = {name: np.full(ids.shape[:-1], np.nan) for name in STATISTICS}
    for inst in np.ndindex(*ids.shape[:-1]):
        tokens = [t for t in range(ids.shape[-1]) if mask[(*inst, t)]]
        if last_n is not None:
            tokens = tokens[-last_n:]
        per_token = [reference_token(logits[(*inst, t)], int(ids[(*inst, t)])) for t in tokens]
        weights = [
            reference_weight(s, weighting, counts[int(ids[(*inst, t)])])
            for s, t in zip(per_token, tokens, strict=True)
        ]
        for name in STATISTICS:
            pairs = [
                (w, s[name])
                for w, s in zip(weights, per_token, strict=True)
                if not math.isnan(s[name]) and w > 0
            ]
            total = sum(w for w, _ in pairs)
            if total > 0:
                result[name][inst] = sum(w * v for w, v in pairs) / total
    return result


# ---------------------------------------------------------------- strategies


@st.composite
def token_problems(draw, *, allow_neg_inf: bool = True):
    """Logits on a half-integer grid (so ties are common and orderings exact), ids, mask."""
    # leading instance axes: none (one sequence), one (a batch) or two
    lead = (*draw(st.lists(st.integers(1, 3), max_size=2)), draw(st.integers(1, 6)))
    vocab = draw(st.integers(2, 9))
    grid = draw(hnp.arrays(np.int64, (*lead, vocab), elements=st.integers(-24, 24)))
    logits = grid.astype(np.float64) / 2.0
    if allow_neg_inf:
        # some tokens the model cannot emit, never a whole row
        holes = draw(hnp.arrays(np.bool_, (*lead, vocab)))
        holes[..., 0] &= ~holes[..., 1:].all(axis=-1)
        logits = np.where(holes, -np.inf, logits)
    ids = draw(hnp.arrays(np.int64, lead, elements=st.integers(0, vocab - 1)))
    mask = draw(hnp.arrays(np.bool_, lead))
    # padding carries ids outside the vocabulary, as tokenizers' -100 does
    ids = np.where(mask, ids, -100)
    return logits, ids, mask


def assert_same(actual: dict[str, np.ndarray], expected: dict[str, np.ndarray], rtol: float):
    for name in STATISTICS:
        np.testing.assert_allclose(
            actual[name], expected[name], rtol=rtol, atol=rtol, equal_nan=True, err_msg=name
        )


# ---------------------------------------------------------------- statistics


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(token_problems())
def test_statistics_match_reference(problem):
    logits, ids, mask = problem
    stats = token_statistics(logits, ids, mask=mask)
    assert_same(stats, reference_statistics(logits, ids, mask), rtol=1e-9)
    # one row per chunk gives the same numbers as one big chunk
    assert_same(token_statistics(logits, ids, mask=mask, chunk_bytes=1), stats, rtol=1e-12)
    # float32 logits on the same grid: same ranks, close values
    assert_same(token_statistics(logits.astype(np.float32), ids, mask=mask), stats, rtol=1e-5)


@settings(max_examples=60, deadline=None)
@given(token_problems(allow_neg_inf=False))
def test_statistics_are_shift_invariant_log_probabilities(problem):
    logits, ids, mask = problem
    log_probs = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
    assert_same(
        token_statistics(log_probs, ids, mask=mask),
        token_statistics(logits, ids, mask=mask),
        rtol=1e-9,
    )


def test_ties_never_penalise_the_expert_token():
    logits = np.array([[1.0, 3.0, 3.0, 3.0, 0.0]])
    stats = token_statistics(logits, np.array([2]))
    assert stats["rank"][0] == 1.0
    assert stats["top1"][0] == 1.0
    assert np.isnan(stats["wrong_confidence"][0])
    stats = token_statistics(logits, np.array([0]))
    assert stats["rank"][0] == 4.0
    assert stats["top3"][0] == 0.0 and stats["top5"][0] == 1.0


def test_uniform_distribution_has_entropy_one_and_zero_margin():
    stats = token_statistics(np.zeros((2, 5, 7)), np.zeros((2, 5), dtype=int))
    np.testing.assert_allclose(stats["entropy"], 1.0)
    np.testing.assert_allclose(stats["cross_entropy"], math.log(7))
    np.testing.assert_allclose(stats["margin"], 0.0, atol=1e-15)


def test_callers_logits_are_left_untouched():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(2, 6, 11)).astype(np.float32)
    before = logits.copy()
    token_statistics(logits, rng.integers(0, 11, size=(2, 6)), chunk_bytes=100)
    np.testing.assert_array_equal(logits, before)


def test_masked_tokens_are_nan_and_unchecked():
    logits = np.zeros((1, 3, 4))
    logits[0, 2] = np.nan  # a padded row of garbage
    stats = token_statistics(logits, np.array([[1, 2, 99]]), mask=np.array([[1, 1, 0]]))
    assert np.isnan(stats["cross_entropy"][0, 2]) and not np.isnan(stats["cross_entropy"][0, 1])


# ---------------------------------------------------------------- weightings and scores


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    token_problems(),
    st.sampled_from(WEIGHTINGS),
    st.one_of(st.none(), st.integers(1, 4)),
)
def test_instance_scores_match_reference(problem, weighting, last_n):
    logits, ids, mask = problem
    stats = token_statistics(logits, ids, mask=mask)
    got = instance_scores(stats, weighting=weighting, expert_ids=ids, last_n=last_n)
    want = reference_instance_scores(logits, ids, mask, weighting, last_n)
    for name in STATISTICS:
        np.testing.assert_allclose(
            got[name], want[name], rtol=1e-9, atol=1e-12, equal_nan=True, err_msg=name
        )


def test_task_scores_mean_and_stderr_over_instances():
    rng = np.random.default_rng(3)
    ids = rng.integers(0, 20, size=(5, 12))
    stats = token_statistics(rng.normal(size=(5, 12, 20)), ids)
    frame = task_scores(stats, expert_ids=ids).set_index("task")
    assert len(frame) == len(STATISTICS) * len(WEIGHTINGS)
    per_instance = instance_scores(stats, weighting="p", expert_ids=ids)["top2"]
    row = frame.loc["tokens.top2.p"]
    assert row["score"] == pytest.approx(per_instance.mean())
    assert row["stderr"] == pytest.approx(per_instance.std(ddof=1) / math.sqrt(5))
    assert not frame.loc["tokens.cross_entropy.uniform", "higher_is_better"]
    assert frame.loc["tokens.top5.inverse_frequency", "higher_is_better"]


def test_frequencies_count_the_expert_corpus():
    ids = np.array([[3, 3, 1], [3, -100, 0]])
    mask = ids >= 0
    np.testing.assert_array_equal(token_frequencies(ids, mask=mask), [1, 1, 0, 3])
    stats = token_statistics(np.zeros((2, 3, 4)), ids, mask=mask)
    w = token_weights(stats, "inverse_frequency", expert_ids=ids)
    np.testing.assert_allclose(w, [[1 / 3, 1 / 3, 1.0], [1 / 3, np.nan, 1.0]])


# ---------------------------------------------------------------- errors at the door


@pytest.mark.parametrize(
    ("logits", "ids", "kwargs", "match"),
    [
        (np.zeros(5), np.zeros(5, int), {}, "shape \\(\\.\\.\\., tokens, vocab\\)"),
        (np.zeros((3, 1)), np.zeros(3, int), {}, "at least 2"),
        (np.zeros((3, 4)), np.zeros(2, int), {}, "expert_ids has shape"),
        (np.zeros((3, 4)), np.zeros(3), {}, "integer token ids"),
        (np.zeros((3, 4)), np.array([0, 4, 1]), {}, r"outside the vocabulary .* \(1,\)"),
        (np.zeros((3, 4)), np.zeros(3, int), {"mask": np.ones(2, bool)}, "mask has shape"),
        (np.zeros((3, 4)), np.zeros(3, int), {"mask": np.array([0, 2, 1])}, "boolean"),
        (np.full((2, 4), -np.inf), np.zeros(2, int), {}, r"positions \(0,\), \(1,\)"),
        (np.array([[0.0, np.nan]]), np.zeros(1, int), {}, "NaN or \\+inf"),
        (np.zeros((2, 4), dtype=int), np.zeros(2, int), {}, "floating point"),
    ],
)
def test_bad_input_raises_a_bayesproxy_error(logits, ids, kwargs, match):
    with pytest.raises(TokenInputError, match=match) as info:
        token_statistics(logits, ids, **kwargs)
    assert isinstance(info.value, BayesproxyError)
    assert "Hint:" in str(info.value)


def test_bad_aggregation_options_raise():
    ids = np.zeros((1, 3), int)
    stats = token_statistics(np.zeros((1, 3, 4)), ids)
    with pytest.raises(TokenInputError, match="unknown weighting"):
        instance_scores(stats, weighting="idf")
    with pytest.raises(TokenInputError, match="needs the expert token ids"):
        instance_scores(stats, weighting="frequency")
    with pytest.raises(TokenInputError, match="last_n"):
        instance_scores(stats, last_n=0)
    with pytest.raises(TokenInputError, match="not among"):
        instance_scores(stats, statistics=["accuracy"])


# ---------------------------------------------------------------- PyTorch tensors


def test_numpy_core_imports_without_torch():
    # torch / transformers are an optional extra: block them and import the core
    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['transformers'] = None\n"
        "import numpy as np, bayesproxy.tokens as t, bayesproxy.tokens.hf\n"
        "print(t.token_statistics(np.zeros((2, 3)), np.array([0, 1]))['rank'].tolist())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[1.0, 1.0]"


def test_torch_tensors_match_numpy():
    torch = pytest.importorskip("torch", reason="PyTorch is an optional extra (tokens)")
    rng = np.random.default_rng(7)
    logits = np.round(rng.normal(size=(2, 9, 33)) * 4) / 4
    ids = rng.integers(0, 33, size=(2, 9))
    mask = rng.random((2, 9)) > 0.2
    want = token_statistics(logits, ids, mask=mask)
    tensor = torch.tensor(logits, requires_grad=True)
    assert_same(
        token_statistics(tensor, torch.tensor(ids), mask=torch.tensor(mask), chunk_bytes=500),
        want,
        rtol=1e-12,
    )
    # a non-contiguous half-precision view is scored chunk by chunk, in float32
    wide = torch.tensor(np.concatenate([logits, logits], axis=1), dtype=torch.bfloat16)
    view = wide[:, ::2]
    got = token_statistics(view, ids, mask=mask)
    want16 = token_statistics(view.double().numpy(), ids, mask=mask)
    assert_same(got, want16, rtol=1e-5)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(token_problems(), st.sampled_from([1, 64, 2**20]), st.sampled_from(["float64", "bfloat16"]))
def test_torch_matches_reference(problem, chunk_bytes, dtype):
    torch = pytest.importorskip("torch", reason="PyTorch is an optional extra (tokens)")
    logits, ids, mask = problem
    # float CPU tensors are scored through a NumPy view; bfloat16 ones (exact on this grid)
    # by the torch kernels, in float32
    tensor = torch.tensor(logits).to(getattr(torch, dtype))
    got = token_statistics(
        tensor, torch.tensor(ids), mask=torch.tensor(mask), chunk_bytes=chunk_bytes
    )
    rtol = 1e-9 if dtype == "float64" else 1e-5
    assert_same(got, reference_statistics(logits, ids, mask), rtol=rtol)


def test_torch_on_gpu_matches_numpy():
    torch = pytest.importorskip("torch", reason="PyTorch is an optional extra (tokens)")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device on this machine")
    rng = np.random.default_rng(8)
    logits = rng.normal(size=(3, 50, 1000)).astype(np.float32)
    ids = rng.integers(0, 1000, size=(3, 50))
    got = token_statistics(torch.tensor(logits, device="cuda"), torch.tensor(ids, device="cuda"))
    assert_same(got, token_statistics(logits, ids), rtol=1e-4)
