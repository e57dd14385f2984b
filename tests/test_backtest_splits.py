"""Splits: which units train and which are held out, on small hand-made tables."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from bayesproxy.backtest import (
    ComputeCutoff,
    EarlyToLate,
    LeaveOneFamilyOut,
    LeaveOneUnitOut,
    SmallToLarge,
    SplitError,
    parse_split,
)


def table(
    units, *, flops=None, params=None, step=None, run=None, family=None, target=None
) -> xr.Dataset:
    n = len(units)
    nan = np.full(n, np.nan)
    y = np.full(n, 0.5) if target is None else np.asarray(target, dtype=float)
    score = np.stack([np.full(n, 0.3), y], axis=1)[:, :, None]
    return xr.Dataset(
        {"score": (("unit", "task", "replicate"), score)},
        coords={
            "unit": list(units),
            "model": ("unit", list(units)),
            "step": ("unit", nan if step is None else np.asarray(step, float)),
            "run": ("unit", list(units) if run is None else list(run)),
            "family": ("unit", [""] * n if family is None else list(family)),
            "params": ("unit", nan if params is None else np.asarray(params, float)),
            "flops": ("unit", nan if flops is None else np.asarray(flops, float)),
            "task": ["p", "t"],
            "replicate": ["0"],
        },
    )


def units_of(ds: xr.Dataset) -> list[str]:
    return [str(u) for u in ds["unit"].values]


def test_compute_cutoff_fit_at_or_below_forecast_above_and_drops_unknown():
    ds = table(list("abcde"), flops=[1e21, 8.4e22, 1e23, np.nan, 5e23])
    (fold,) = list(ComputeCutoff(flops=8.4e22).split(ds))
    assert units_of(fold.train) == ["a", "b"]
    assert units_of(fold.test) == ["c", "e"]
    assert fold.split == "compute:8.4e+22"
    assert units_of(ds) == list("abcde")  # caller's table untouched


def test_compute_cutoff_outside_range_says_which_side_is_empty():
    ds = table(list("ab"), flops=[1e21, 2e21])
    with pytest.raises(SplitError, match="no test units"):
        list(ComputeCutoff(flops=1e22).split(ds))


def test_early_to_late_fraction_is_per_run():
    ds = table(
        ["r1@10", "r1@20", "r1@100", "r2@5", "r2@50", "x"],
        step=[10, 20, 100, 5, 50, np.nan],
        run=["r1", "r1", "r1", "r2", "r2", "x"],
    )
    (fold,) = list(EarlyToLate(step_fraction=0.3).split(ds))
    # r1: cutoff 30 -> 10, 20 early; r2: cutoff 15 -> 5 early; x has no step: left out
    assert units_of(fold.train) == ["r1@10", "r1@20", "r2@5"]
    assert units_of(fold.test) == ["r1@100", "r2@50"]


def test_early_to_late_absolute_step_and_run_filter():
    ds = table(
        ["r1@10", "r1@100", "r2@10", "r2@100"],
        step=[10, 100, 10, 100],
        run=["r1", "r1", "r2", "r2"],
    )
    (fold,) = list(EarlyToLate(max_step=50, runs=("r2",)).split(ds))
    assert units_of(fold.train) == ["r2@10"]
    assert units_of(fold.test) == ["r2@100"]
    with pytest.raises(SplitError, match=r"runs \['r9'\]"):
        list(EarlyToLate(max_step=50, runs=("r9",)).split(ds))


def test_early_to_late_needs_exactly_one_cutoff():
    with pytest.raises(SplitError, match="exactly one"):
        EarlyToLate()
    with pytest.raises(SplitError, match="exactly one"):
        EarlyToLate(step_fraction=0.3, max_step=10)
    with pytest.raises(SplitError, match=r"\(0, 1\)"):
        EarlyToLate(step_fraction=1.5)


def test_small_to_large():
    ds = table(list("abc"), params=[1e8, 1e9, 7e9])
    (fold,) = list(SmallToLarge(params=1e9).split(ds))
    assert units_of(fold.train) == ["a", "b"]
    assert units_of(fold.test) == ["c"]


def test_leave_one_family_out_skips_unscorable_and_keeps_unknown_family_in_train():
    ds = table(
        list("abcde"),
        family=["f1", "f1", "f2", "f3", ""],
        target=[0.1, 0.2, np.nan, 0.4, 0.5],
    )
    folds = list(LeaveOneFamilyOut().split(ds, target="t"))
    assert [f.name for f in folds] == ["f1", "f3"]  # f2 never observes the target
    assert units_of(folds[0].test) == ["a", "b"]
    assert units_of(folds[0].train) == ["c", "d", "e"]
    only = list(LeaveOneFamilyOut(families=("f3",)).split(ds, target="t"))
    assert [f.name for f in only] == ["f3"]
    with pytest.raises(SplitError, match="f9"):
        list(LeaveOneFamilyOut(families=("f9",)).split(ds))


def test_leave_one_unit_out_only_scorable_units():
    ds = table(list("abc"), target=[0.1, np.nan, 0.3])
    folds = list(LeaveOneUnitOut().split(ds, target="t"))
    assert [f.name for f in folds] == ["a", "c"]
    assert units_of(folds[1].train) == ["a", "b"]


def test_missing_coordinate_is_named():
    ds = table(list("ab")).drop_vars("flops")
    with pytest.raises(SplitError, match="'flops'"):
        list(ComputeCutoff().split(ds))


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("compute:8.4e22", ComputeCutoff(flops=8.4e22)),
        ("compute", ComputeCutoff()),
        ("early-late:0.3", EarlyToLate(step_fraction=0.3)),
        ("early-late:step=50000", EarlyToLate(max_step=50000)),
        ("small-large:1e9", SmallToLarge(params=1e9)),
        ("family", LeaveOneFamilyOut()),
        ("unit", LeaveOneUnitOut()),
    ],
)
def test_parse_split(spec, expected):
    assert parse_split(spec) == expected


@pytest.mark.parametrize("spec", ["compute:lots", "small-large", "family:x", "weekly", "unit:1"])
def test_parse_split_rejects_with_hint(spec):
    with pytest.raises(SplitError, match="Hint"):
        parse_split(spec)


def test_splits_return_benchmark_tables_for_benchmark_tables():
    from bayesproxy.table import BenchmarkTable

    ds = table(list("abcd"), family=["f", "f", "g", "g"], target=[0.1, 0.2, 0.3, 0.4])
    ds = ds.assign(
        stderr=ds["score"] * np.nan,
        n_items=ds["score"] * np.nan,
        tokens=("unit", np.full(4, np.nan)),
    ).assign_coords(
        chance=("task", [0.0, 0.0]),
        kind=("task", ["accuracy", "accuracy"]),
        higher_is_better=("task", [True, True]),
    )
    ds = ds.set_coords("tokens")
    ds.attrs["target"] = "t"
    bt = BenchmarkTable(ds)
    folds = list(LeaveOneUnitOut().split(bt, target="t"))
    assert len(folds) == 4
    assert all(isinstance(f.test, BenchmarkTable) for f in folds)
    assert folds[0].test.n_units == 1 and folds[0].train.n_units == 3
