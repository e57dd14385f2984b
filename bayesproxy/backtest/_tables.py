"""The two table operations the harness needs: take units, and swap the dataset.

Both return new objects (the caller's table is never changed) and work on a
:class:`~bayesproxy.table.BenchmarkTable` or on a bare ``xarray.Dataset`` of the same shape.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

__all__ = ["dataset_of", "subset_units", "with_dataset"]


def dataset_of(table: Any) -> xr.Dataset:
    """Return the dataset behind a table (or the dataset itself)."""
    return table if isinstance(table, xr.Dataset) else table.dataset


def with_dataset(table: Any, dataset: xr.Dataset) -> Any:
    """Return a table of the same type as ``table`` holding ``dataset``."""
    if isinstance(table, xr.Dataset):
        return dataset
    # a test table may observe the target on few units, or none once it is masked
    return type(table)(dataset, min_target_units=0)


def subset_units(table: Any, mask: np.ndarray) -> Any:
    """Return the table restricted to the units where ``mask`` is true."""
    mask = np.asarray(mask, dtype=bool)
    if isinstance(table, xr.Dataset):
        return table.isel(unit=np.flatnonzero(mask))
    return table.select(units=mask)
