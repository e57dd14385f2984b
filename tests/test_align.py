import numpy as np
import pandas as pd
import pytest

from bayesproxy.align import align_checkpoints
from bayesproxy.errors import TableError
from bayesproxy.table import BenchmarkTable

TOKENS_PER_STEP = 2_097_152


def pythia_like() -> tuple[pd.DataFrame, dict]:
    """Two runs; proxies at 3k + 10k·i, the target at 13k, 39k, 65k, ... (Pythia's grid)."""
    rows = []
    truth = {}
    for run, speed, last in [("small", 1.0, 143_000), ("large", 1.2, 93_000)]:
        proxy_steps = np.arange(3_000, last + 1, 10_000)
        target_steps = np.arange(13_000, last + 1, 26_000)
        truth[run] = (speed, proxy_steps, target_steps)
        for s in proxy_steps:
            x = np.log(s * TOKENS_PER_STEP)
            rows.append((run, s, "proxy", 0.02 * speed * x))
        for s in target_steps:
            rows.append((run, s, "target", min(0.9, 0.01 * speed * np.log(s))))
    df = pd.DataFrame(rows, columns=["model", "step", "task", "score"])
    df["tokens"] = df["step"] * TOKENS_PER_STEP
    return df, truth


@pytest.fixture(scope="module")
def table() -> BenchmarkTable:
    df, _ = pythia_like()
    return BenchmarkTable.from_dataframe(df, target="target")


def test_align_onto_target_steps_is_exact_in_log_tokens(table):
    _, truth = pythia_like()
    aligned = align_checkpoints(table, steps="target")
    for run, (speed, proxy_steps, target_steps) in truth.items():
        units = aligned.units[aligned.units.run == run]
        assert units.step.tolist() == target_steps.tolist()
        got = aligned.score.sel(task="proxy", unit=units.index.tolist()).isel(replicate=0).values
        expected = 0.02 * speed * np.log(target_steps * TOKENS_PER_STEP)
        inside = target_steps <= proxy_steps.max()
        # the proxy is linear in log tokens, so interpolation there is exact
        np.testing.assert_allclose(got[inside], expected[inside], rtol=1e-10)
        # never extrapolate past the proxy's last evaluated step
        assert np.isnan(got[~inside]).all()
    assert aligned.dataset.attrs["aligned_on"] == "tokens"


def test_never_across_runs(table):
    aligned = align_checkpoints(table, steps=[100_000, 140_000])
    # the large run ends at 93k: no unit there; the small run has both steps
    assert aligned.units.run.tolist() == ["small", "small"]
    assert np.isfinite(aligned.score.sel(task="proxy")).all()


def test_default_keeps_union_and_fills_inside(table):
    aligned = align_checkpoints(table)
    assert aligned.n_units == table.n_units
    observed_before = table.observed.sum().item()
    observed_after = aligned.observed.sum().item()
    assert observed_after > observed_before
    # at the first proxy step (3k) the target (first at 13k) must stay missing
    first = aligned.units.index[aligned.units.step == 3_000]
    assert aligned.score.sel(task="target", unit=first).isnull().all()


def test_step_scale_without_tokens():
    df, _ = pythia_like()
    table = BenchmarkTable.from_dataframe(df.drop(columns="tokens"), target="target")
    aligned = align_checkpoints(table, steps="target")
    assert aligned.dataset.attrs["aligned_on"] == "step"
    with pytest.raises(TableError, match="scale='tokens'"):
        align_checkpoints(table, scale="tokens")


def test_table_without_steps_refused():
    df = pd.DataFrame({"model": ["a", "b", "c"], "task": "x", "score": [0.1, 0.2, 0.3]})
    with pytest.raises(TableError, match="no checkpoint steps"):
        align_checkpoints(BenchmarkTable.from_dataframe(df))
