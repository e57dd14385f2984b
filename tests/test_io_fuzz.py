"""Random malformed tables thrown at the reader: only bayesproxy errors may come out."""

import warnings

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bayesproxy.errors import BayesproxyError
from bayesproxy.io import read_table
from bayesproxy.table import BenchmarkTable

COLUMNS = [
    "model",
    "task",
    "score",
    "step",
    "tokens",
    "replicate",
    "seed",
    "run_id",
    "subtask",
    "metric",
    "chance",
    "is_fraction",
    "higher_is_better",
    "stderr",
    "n_items",
    "family",
]
CELLS = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.floats(min_value=0, max_value=1),
    st.integers(-5, 200),
    st.sampled_from(["a", "b", "mmlu", "arc_easy", "", " ", "nan", "1e3", "True", "0.5", "x,y"]),
    st.booleans(),
)


@st.composite
def tables(draw):
    n_rows = draw(st.integers(0, 12))
    names = draw(st.lists(st.sampled_from(COLUMNS), min_size=1, max_size=8, unique=True))
    if draw(st.booleans()):  # mostly keep the required columns so deeper checks run
        names = list(dict.fromkeys(["model", "task", "score", *names]))
    data = {}
    for name in names:
        if name in ("model", "task") and draw(st.booleans()):
            col = draw(
                st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=n_rows, max_size=n_rows)
            )
        elif name == "score" and draw(st.booleans()):
            col = draw(st.lists(st.floats(0, 1), min_size=n_rows, max_size=n_rows))
        else:
            col = draw(st.lists(CELLS, min_size=n_rows, max_size=n_rows))
        data[name] = pd.Series(col, dtype=object)
    return pd.DataFrame(data)


OPTIONS = st.fixed_dictionaries(
    {
        "target": st.sampled_from([None, "a", "b", "mmlu", "zz"]),
        "percent": st.sampled_from(["auto", "refuse", "bogus", ["a"]]),
        "drop_constant": st.booleans(),
        "format": st.sampled_from(["auto", "long", "wide"]),
    }
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(df=tables(), options=OPTIONS)
def test_reader_raises_only_bayesproxy_errors(df, options):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning would be a silent problem: fail on it
        try:
            table = read_table(df, **options)
        except BayesproxyError as err:
            assert "Hint:" in str(err)
            return
    assert isinstance(table, BenchmarkTable)
    acc = table.task_info.kind == "accuracy"
    values = table.score.sel(task=table.task_info.index[acc].tolist()).values
    assert np.all(np.isnan(values) | ((values >= 0) & (values <= 1)))
    assert np.all(np.isfinite(table.score.values) | np.isnan(table.score.values))
