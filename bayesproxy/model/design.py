"""Arrays the proxy model is built from, read once from a benchmark table.

Proxies are put on a latent scale (logit above chance for accuracies, log or identity for
metrics, oriented so higher is better) and standardised per task with constants taken from
the training table; :class:`Scaling` keeps those constants so a new table is transformed
identically. Replicates are summarised per (unit, proxy) cell by their mean, count and
within-cell sum of squares, which is all the marginalised likelihood needs; cells with no
observation simply do not appear (masking, not imputation).

Examples
--------
>>> import numpy as np, xarray as xr
>>> rng = np.random.default_rng(0)
>>> ds = xr.Dataset(
...     {"score": (("unit", "task", "replicate"), rng.uniform(0.3, 0.7, (6, 3, 2)))},
...     coords={"unit": list("abcdef"), "task": ["p1", "p2", "t"], "replicate": ["0", "1"]},
... )
>>> d = build_design(ds, target="t")
>>> d.proxies, d.n_units, len(d.cell_unit)
(['p1', 'p2'], 6, 12)
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from bayesproxy.errors import (
    BayesproxyError,
    EmptyTableError,
    InsufficientTargetError,
    UnknownTaskError,
)

__all__ = [
    "ACCURACY_EPS",
    "Design",
    "DesignError",
    "Scaling",
    "build_design",
    "data_fingerprint",
    "table_dataset",
]

#: Accuracies are clipped to [eps, 1 - eps] of the range above chance before the logit, so
#: a proxy at (or, through noise, below) chance maps to a finite floor of logit(0.02) ~ -3.9
#: instead of -inf; the target is clipped likewise before a Beta likelihood.
ACCURACY_EPS = 0.02
#: Minimum number of units with an observed target.
MIN_TARGET_UNITS = 3


class DesignError(BayesproxyError, ValueError):
    """A table the proxy model cannot be built from as given."""

    def __init__(self, message: str, *, hint: str) -> None:
        super().__init__(f"{message}\nHint: {hint}")


def table_dataset(table: Any) -> xr.Dataset:
    """Return the dataset behind a BenchmarkTable (or the Dataset itself).

    Examples
    --------
    >>> import xarray as xr
    >>> table_dataset(xr.Dataset({"score": ("unit", [0.1])})).sizes["unit"]
    1
    """
    dataset = getattr(table, "dataset", table)
    if not isinstance(dataset, xr.Dataset) or "score" not in dataset:
        raise DesignError(
            f"expected a BenchmarkTable, got {type(table).__name__}.",
            hint="read the data with bayesproxy.read_table(...) and pass the table.",
        )
    return dataset


def data_fingerprint(table: Any) -> str:
    """SHA-256 of a table's scores, errors, item counts and unit / task labels.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ds = xr.Dataset({"score": (("unit",), np.array([0.5]))}, coords={"unit": ["a"]})
    >>> len(data_fingerprint(ds))
    64
    """
    ds = table_dataset(table)
    digest = hashlib.sha256()
    for name in ("score", "stderr", "n_items"):
        if name in ds:
            digest.update(name.encode())
            digest.update(np.ascontiguousarray(ds[name].values, dtype=float).tobytes())
    for name in ("unit", "task", "replicate", "flops", "family", "run"):
        if name in ds.coords:
            digest.update(name.encode())
            digest.update("\x1f".join(map(str, ds[name].values.tolist())).encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class Scaling:
    """Per-proxy transform and standardisation constants, plus the log-compute scaling.

    Attributes
    ----------
    proxies : list of str
    transform : list of str
        ``"logit"`` (accuracy above chance), ``"log"`` (positive metric) or ``"identity"``.
    chance : ndarray
        Chance floor per proxy (0 for metrics).
    sign : ndarray
        +1, or -1 for lower-is-better metrics (so every proxy rises with capability).
    center, scale : ndarray
        Standardisation constants on the transformed scale.
    compute_center, compute_scale : float
        Mean and SD of log10 compute over the training units with known compute.
    """

    proxies: list[str]
    transform: list[str]
    chance: np.ndarray
    sign: np.ndarray
    center: np.ndarray
    scale: np.ndarray
    compute_center: float
    compute_scale: float


@dataclass(frozen=True)
class Design:
    """Everything the PyMC model and the conjugate forecasts need from one table."""

    target: str
    proxies: list[str]
    units: np.ndarray  # str labels
    model: np.ndarray
    step: np.ndarray
    family: np.ndarray  # str, "" unknown
    run: np.ndarray  # str
    x: np.ndarray  # standardised log compute, NaN unknown
    scaling: Scaling
    # proxy cells: one entry per (unit, proxy) with >= 1 observed replicate
    cell_unit: np.ndarray
    cell_proxy: np.ndarray
    cell_mean: np.ndarray
    cell_n: np.ndarray
    cell_ss: np.ndarray  # within-cell sum of squares (0 when n == 1)
    cell_se2: np.ndarray  # mean squared standard error on the latent scale (0 unknown)
    # target observations: one entry per observed (unit, replicate)
    target_unit: np.ndarray
    target_score: np.ndarray
    target_n_items: np.ndarray  # NaN unknown
    target_chance: float
    replicates_per_proxy: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def n_units(self) -> int:
        """Number of units."""
        return len(self.units)

    @property
    def likelihood(self) -> str:
        """``"binomial"`` when every target observation has an item count, else ``"beta"``."""
        counts = self.target_n_items
        return "binomial" if counts.size and np.all(np.isfinite(counts)) else "beta"

    @property
    def has_target(self) -> np.ndarray:
        """Whether each unit has an observed target."""
        mask = np.zeros(self.n_units, bool)
        mask[self.target_unit] = True
        return mask


def _coord(ds: xr.Dataset, name: str, fill: Any, dtype: Any) -> np.ndarray:
    if name in ds.coords:
        return np.asarray(ds[name].values, dtype=dtype)
    return np.full(ds.sizes["unit"], fill, dtype=dtype)


def _log_compute(ds: xr.Dataset) -> np.ndarray:
    flops = _coord(ds, "flops", np.nan, float)
    approx = 6.0 * _coord(ds, "params", np.nan, float) * _coord(ds, "tokens", np.nan, float)
    flops = np.where(np.isfinite(flops) & (flops > 0), flops, approx)
    with np.errstate(all="ignore"):
        return np.where(np.isfinite(flops) & (flops > 0), np.log10(flops), np.nan)


def _transform(
    values: np.ndarray, kind: str, chance: float | np.ndarray, sign: float | np.ndarray
) -> np.ndarray:
    if kind == "logit":
        r = np.clip((values - chance) / (1.0 - chance), ACCURACY_EPS, 1.0 - ACCURACY_EPS)
        return np.log(r) - np.log1p(-r)
    if kind == "log":
        return sign * np.log(values)
    return sign * values


def _fit_scaling(ds: xr.Dataset, proxies: list[str], score: np.ndarray) -> Scaling:
    kinds = _coord_task(ds, "kind", "accuracy", object)
    chances = _coord_task(ds, "chance", 0.0, float)
    hib = _coord_task(ds, "higher_is_better", True, bool)
    tasks = [str(t) for t in ds["task"].values]
    transform, chance, sign, center, scale = [], [], [], [], []
    for k, name in enumerate(proxies):
        j = tasks.index(name)
        vals = score[:, k, :]
        finite = vals[np.isfinite(vals)]
        if str(kinds[j]) == "accuracy":
            kind, c, s = "logit", float(np.nan_to_num(chances[j])), 1.0
        else:
            kind = "log" if finite.size and np.all(finite > 0) else "identity"
            c, s = 0.0, 1.0 if bool(hib[j]) else -1.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            unit_means = np.nanmean(_transform(vals, kind, c, s), axis=1)
        unit_means = unit_means[np.isfinite(unit_means)]
        sd = float(np.std(unit_means, ddof=1)) if unit_means.size > 1 else 0.0
        if not np.isfinite(sd) or sd <= 1e-9:
            raise DesignError(
                f"proxy {name!r} does not vary across the units on its latent scale "
                f"({unit_means.size} unit(s) observed).",
                hint="drop it with proxies=[...] or check its scores (all at chance?).",
            )
        transform.append(kind)
        chance.append(c)
        sign.append(s)
        center.append(float(np.mean(unit_means)))
        scale.append(sd)
    logc = _log_compute(ds)
    known = logc[np.isfinite(logc)]
    c_center = float(np.mean(known)) if known.size else 0.0
    c_scale = float(np.std(known, ddof=1)) if known.size > 1 else 1.0
    if not np.isfinite(c_scale) or c_scale <= 1e-9:
        c_scale = 1.0
    return Scaling(
        proxies=list(proxies),
        transform=transform,
        chance=np.asarray(chance),
        sign=np.asarray(sign),
        center=np.asarray(center),
        scale=np.asarray(scale),
        compute_center=c_center,
        compute_scale=c_scale,
    )


def _coord_task(ds: xr.Dataset, name: str, fill: Any, dtype: Any) -> np.ndarray:
    if name in ds.coords:
        return np.asarray(ds[name].values, dtype=dtype)
    return np.full(ds.sizes["task"], fill, dtype=dtype)


def _select(ds: xr.Dataset, var: str, tasks: list[str]) -> np.ndarray:
    if var not in ds:
        return np.full((ds.sizes["unit"], len(tasks), ds.sizes.get("replicate", 1)), np.nan)
    arr = ds[var].sel(task=tasks) if tasks else ds[var].isel(task=[])
    return np.asarray(arr.transpose("unit", "task", "replicate").values, dtype=float)


def build_design(
    table: Any,
    *,
    target: str,
    proxies: list[str] | None = None,
    scaling: Scaling | None = None,
    require_target: bool = True,
) -> Design:
    """Read a table into a :class:`Design`.

    Parameters
    ----------
    table : BenchmarkTable or xarray.Dataset
        A table following the BenchmarkTable contract.
    target : str
        The target task.
    proxies : list of str, optional
        Proxy tasks; default every task but the target. Ignored when ``scaling`` is given.
    scaling : Scaling, optional
        Constants of a fitted model: a new table is transformed with them (forecasting).
    require_target : bool, default True
        Raise when the target is observed on fewer than 3 units (fitting needs it).

    Returns
    -------
    Design

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ds = xr.Dataset(
    ...     {"score": (("unit", "task", "replicate"), np.linspace(0.3, 0.8, 8).reshape(4, 2, 1))},
    ...     coords={"unit": list("abcd"), "task": ["p", "t"], "replicate": ["0"]},
    ... )
    >>> build_design(ds, target="t").cell_mean.round(2).tolist()
    [-1.16, -0.37, 0.36, 1.18]
    """
    ds = table_dataset(table)
    if ds.sizes.get("unit", 0) == 0:
        raise EmptyTableError("the table has no units")
    if "replicate" not in ds.dims:
        ds = ds.expand_dims(replicate=["0"], axis=-1)
    tasks = [str(t) for t in ds["task"].values]
    if target not in tasks and require_target:
        raise UnknownTaskError(target, tasks, role="target")
    if scaling is not None:
        proxies = list(scaling.proxies)
        missing = [p for p in proxies if p not in tasks]
        present = [p for p in proxies if p in tasks]
    else:
        proxies = [t for t in tasks if t != target] if proxies is None else list(proxies)
        for p in proxies:
            if p not in tasks:
                raise UnknownTaskError(p, tasks, role="proxy")
            if p == target:
                raise DesignError(
                    f"the target {target!r} is also listed as a proxy.",
                    hint="remove it from proxies=[...].",
                )
        if not proxies:
            raise DesignError(
                "the model needs at least one proxy task besides the target.",
                hint="add proxy evaluations to the table or pass proxies=[...].",
            )
        missing, present = [], proxies
    n_rep = ds.sizes["replicate"]
    score = np.full((ds.sizes["unit"], len(proxies), n_rep), np.nan)
    stderr = np.full_like(score, np.nan)
    if present:
        idx = [proxies.index(p) for p in present]
        score[:, idx, :] = _select(ds, "score", present)
        stderr[:, idx, :] = _select(ds, "stderr", present)
    del missing  # proxies the new table lacks: all cells unobserved (masked)
    if scaling is None:
        scaling = _fit_scaling(ds, proxies, score)

    transforms = np.asarray(scaling.transform)
    for k in np.flatnonzero(transforms == "log"):
        bad = np.isfinite(score[:, k]) & (score[:, k] <= 0)
        if bad.any():
            rows = np.asarray(ds["unit"].values)[bad.any(axis=1)]
            raise DesignError(
                f"proxy {proxies[k]!r} is modelled on the log scale but has values <= 0 at "
                f"units {list(map(str, rows[:5]))}.",
                hint="fix those scores or fit again with a table where they are positive.",
            )
    from bayesproxy.model.design_loops import IDENTITY, LOG, LOGIT, cell_summaries

    codes = {"logit": LOGIT, "log": LOG, "identity": IDENTITY}
    # one compiled pass per cell: mean and sum of squares of the finite transformed
    # replicates (an infinite transformed score leaves the cell, as a missing one does)
    # and the mean squared standard error over those whose error is known
    mean, ss, se2, n = cell_summaries(
        score,
        stderr,
        kind=np.array([codes[t] for t in scaling.transform], dtype=np.int64),
        chance=scaling.chance,
        sign=scaling.sign,
        center=scaling.center,
        scale=scaling.scale,
        eps=ACCURACY_EPS,
    )
    cell_unit, cell_proxy = np.nonzero(n > 0)
    se2_cells = np.nan_to_num(se2[cell_unit, cell_proxy], nan=0.0)

    logc = _log_compute(ds)
    x = (logc - scaling.compute_center) / scaling.compute_scale

    # target observations
    if target in tasks:
        t_score = _select(ds, "score", [target])[:, 0, :]
        t_items = _select(ds, "n_items", [target])[:, 0, :]
        t_chance = float(np.nan_to_num(_coord_task(ds, "chance", 0.0, float)[tasks.index(target)]))
        t_kind = str(_coord_task(ds, "kind", "accuracy", object)[tasks.index(target)])
    else:
        t_score = np.full((ds.sizes["unit"], n_rep), np.nan)
        t_items = t_score.copy()
        t_chance, t_kind = 0.0, "accuracy"
    if require_target:
        if t_kind != "accuracy":
            raise DesignError(
                f"the target {target!r} is a metric ({t_kind!r}); the model forecasts "
                "accuracies in [chance, ceiling].",
                hint="choose an accuracy-like task as the target.",
            )
        fin = t_score[np.isfinite(t_score)]
        if fin.size and (fin.min() < 0 or fin.max() > 1):
            raise DesignError(
                f"target {target!r} has scores outside [0, 1].",
                hint="scores must be fractions; divide percentages by 100.",
            )
    t_unit, t_rep = np.nonzero(np.isfinite(t_score))
    if require_target and len(np.unique(t_unit)) < MIN_TARGET_UNITS:
        raise InsufficientTargetError(target, len(np.unique(t_unit)), MIN_TARGET_UNITS)

    units = np.asarray(ds["unit"].values).astype(str)
    return Design(
        target=target,
        proxies=proxies,
        units=units,
        model=_coord(ds, "model", "", object) if "model" in ds.coords else units.astype(object),
        step=_coord(ds, "step", np.nan, float),
        family=np.asarray(_coord(ds, "family", "", object), dtype=str),
        run=np.asarray(_coord(ds, "run", "", object), dtype=str)
        if "run" in ds.coords
        else units.copy(),
        x=x,
        scaling=scaling,
        cell_unit=cell_unit,
        cell_proxy=cell_proxy,
        cell_mean=mean[cell_unit, cell_proxy],
        cell_n=n[cell_unit, cell_proxy].astype(float),
        cell_ss=ss[cell_unit, cell_proxy],
        cell_se2=se2_cells,
        target_unit=t_unit,
        target_score=t_score[t_unit, t_rep],
        target_n_items=t_items[t_unit, t_rep],
        target_chance=t_chance,
        replicates_per_proxy=np.array(
            [
                float(np.median(n[:, k][n[:, k] > 0])) if np.any(n[:, k] > 0) else 1.0
                for k in range(len(proxies))
            ]
        ),
    )
