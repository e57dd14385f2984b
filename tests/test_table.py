import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayesproxy.errors import (
    ConstantTaskError,
    EmptyTableError,
    InsufficientTargetError,
    TableError,
    UnknownTaskError,
)
from bayesproxy.table import BenchmarkTable


def small_long() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "model": ["a", "b", "c", "d"] * 3,
            "step": [np.nan] * 12,
            "task": ["x"] * 4 + ["y"] * 4 + ["mmlu"] * 4,
            "score": [0.3, 0.5, 0.7, np.nan, 0.26, 0.3, 0.6, 0.8, 0.25, 0.25, 0.4, np.nan],
            "family": ["f1", "f1", "f2", "f2"] * 3,
        }
    )


def test_contract_dims_and_coords():
    table = BenchmarkTable.from_dataframe(small_long())
    ds = table.dataset
    assert ds["score"].dims == ("unit", "task", "replicate")
    assert set(ds.coords) >= {
        "unit",
        "model",
        "step",
        "run",
        "family",
        "params",
        "tokens",
        "flops",
        "task",
        "chance",
        "kind",
        "higher_is_better",
        "replicate",
    }
    assert table.tasks == ["mmlu", "x", "y"]
    assert list(ds["replicate"].values) == ["0"]
    assert ds.attrs["target"] == ""
    # missing kept as NaN, not dropped
    assert np.isnan(ds["score"].sel(unit="d", task="x").item())
    assert table.n_units == 4
    assert table.chance["mmlu"] == 0.25


def test_target_and_proxies():
    table = BenchmarkTable.from_dataframe(small_long(), target="mmlu")
    assert table.proxies == ["x", "y"]
    assert table.target_observed.tolist() == [True, True, True, False]
    with pytest.raises(UnknownTaskError, match="did you mean 'mmlu'"):
        table.with_target("mmmlu")
    with pytest.raises(InsufficientTargetError):
        table.with_target("mmlu", min_target_units=4)


def test_round_trip_to_dataframe():
    table = BenchmarkTable.from_dataframe(small_long(), target="y")
    again = BenchmarkTable.from_dataframe(table.to_dataframe(), target="y")
    assert again == table


def test_select_and_empty():
    table = BenchmarkTable.from_dataframe(small_long(), target="y")
    sub = table.select(units=["a", "c"], tasks=["x"])
    assert sub.n_units == 2 and sub.tasks == ["x"] and sub.target == ""
    with pytest.raises(EmptyTableError):
        table.select(units=np.zeros(4, dtype=bool))


def test_constant_task_refused_or_dropped():
    df = small_long()
    df.loc[df.task == "x", "score"] = 0.4
    with pytest.raises(ConstantTaskError, match="'x'"):
        BenchmarkTable.from_dataframe(df)
    assert "x" not in BenchmarkTable.from_dataframe(df, drop_constant=True).tasks


def test_bad_dataset_rejected():
    with pytest.raises(TableError, match="contract"):
        BenchmarkTable(xr.Dataset({"score": (("unit",), [1.0])}))
