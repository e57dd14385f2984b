"""Save and load fitted proxy models as one netCDF file (an xarray DataTree).

The file holds the posterior, sample statistics, observed data, a ``design`` group with the
constants forecasting needs (proxy transforms and standardisation, training units) and, in
the root attributes, the provenance: package version, schema version, target, proxies,
priors and sampler settings (JSON) and the data fingerprint. Files are written to a
temporary name in the same folder and renamed, so a crash never leaves a half-written fit.

Examples
--------
>>> check_schema({"schema_version": SCHEMA_VERSION}, "fit.nc")
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from bayesproxy.errors import ModelFileError

__all__ = ["SCHEMA_VERSION", "check_schema", "read_datatree", "write_datatree"]

#: Version of the layout of a saved fit; bump on any incompatible change (2: one factor's
#: hierarchy has an SD per level, the family slopes' free parameter is zero-sum with dims
#: (factor, family), and the link intercept is sampled centred; 3: that free parameter is
#: the partially non-centred ``family_slope_dev`` in place of ``family_slope_z``).
SCHEMA_VERSION = "3"


def _clean(ds: xr.Dataset) -> xr.Dataset:
    """Drop object variables netCDF cannot store (e.g. nutpie's divergence messages)."""
    drop = [
        name
        for name, var in ds.data_vars.items()
        if var.dtype == object and not all(isinstance(v, str) for v in np.ravel(var.values))
    ]
    return ds.drop_vars(drop)


def write_datatree(dt: xr.DataTree, path: str | os.PathLike[str]) -> Path:
    """Write ``dt`` to ``path`` atomically (temporary file, then rename).

    Parameters
    ----------
    dt : xarray.DataTree
    path : path-like

    Returns
    -------
    pathlib.Path
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    groups = {node.path: _clean(node.to_dataset(inherit=False)) for node in dt.subtree}
    clean = xr.DataTree.from_dict(groups)
    clean.attrs = dict(dt.attrs)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        clean.to_netcdf(tmp, engine="h5netcdf")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def check_schema(attrs: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Raise :class:`ModelFileError` unless the attributes are of this schema version."""
    found = attrs.get("schema_version")
    if found is None:
        raise ModelFileError(
            f"{str(path)!r} is not a bayesproxy fit (no 'schema_version' attribute).\n"
            "Hint: pass a file written by ProxyForecaster.save or `bayesproxy fit --out`."
        )
    if str(found) != SCHEMA_VERSION:
        raise ModelFileError(
            f"{str(path)!r} was written with fit schema version {found!r}; this bayesproxy "
            f"({attrs.get('bayesproxy_version', '?')} wrote it) reads version "
            f"{SCHEMA_VERSION!r}.\nHint: refit the model with this version of bayesproxy."
        )


def read_datatree(path: str | os.PathLike[str]) -> xr.DataTree:
    """Read a fit written by :func:`write_datatree` fully into memory and check its schema.

    Raises
    ------
    ModelFileError
        When the file is missing, not a netCDF DataTree, or of another schema version.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(
            f"no fit file at {str(path)!r}.\nHint: check the path, or create one with "
            "`bayesproxy fit TABLE.csv --target TASK --out FIT.nc`."
        )
    try:
        with xr.open_datatree(path, engine="h5netcdf") as opened:
            dt = opened.load().copy(deep=True)
    except Exception as err:  # any reader failure means the file is not a usable fit
        raise ModelFileError(
            f"cannot read {str(path)!r} as a bayesproxy fit: {type(err).__name__}: {err}.\n"
            "Hint: the file is corrupt or not netCDF; refit and save again."
        ) from None
    check_schema(dt.attrs, path)
    for group in ("posterior", "design"):
        if group not in dt.children:
            raise ModelFileError(
                f"{str(path)!r} lacks the {group!r} group of a bayesproxy fit.\n"
                "Hint: the file is incomplete; refit and save again."
            )
    return dt
