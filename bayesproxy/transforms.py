"""Score <-> latent-scale transforms shared by the models.

* ``"logit"`` (accuracy tasks): z = logit((x − c) / (1 − c)) with c the chance level;
  the share above chance is clipped into [eps, 1 − eps] first, so scores at or below chance
  (and perfect scores) map to finite values. ``eps`` is half an item (0.5 / n_items) when
  the item count is known, else :data:`DEFAULT_EPS`.
* ``"log"`` (positive metrics: losses, perplexities, ranks): z = log(x), with x clipped
  to at least :data:`DEFAULT_EPS`.
* ``"identity"``: z = x (metrics that can be zero or negative).

:func:`transform_for` picks the transform of a task from its kind and values.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import xarray as xr
from scipy.special import expit, logit

from bayesproxy.errors import TableError

__all__ = [
    "DEFAULT_EPS",
    "Transform",
    "from_latent",
    "table_latent",
    "to_latent",
    "transform_for",
]

DEFAULT_EPS = 1e-3
Transform = Literal["logit", "log", "identity"]
_TRANSFORMS = ("logit", "log", "identity")


def transform_for(kind: str, values: np.ndarray | None = None) -> Transform:
    """Choose the transform of a task: logit for accuracies, log for positive metrics.

    Parameters
    ----------
    kind : {"accuracy", "metric"}
    values : ndarray, optional
        The task's scores; a metric with any value <= 0 gets ``"identity"``.

    Returns
    -------
    str

    Examples
    --------
    >>> transform_for("accuracy"), transform_for("metric", np.array([2.1, 3.0]))
    ('logit', 'log')
    >>> transform_for("metric", np.array([-1.0, 0.5]))
    'identity'
    """
    if kind == "accuracy":
        return "logit"
    if kind != "metric":
        raise TableError(f"unknown task kind {kind!r}.\nHint: use 'accuracy' or 'metric'.")
    if values is not None:
        finite = np.asarray(values, dtype=float)
        finite = finite[np.isfinite(finite)]
        if finite.size and finite.min() <= 0:
            return "identity"
    return "log"


def to_latent(
    score: np.ndarray | float,
    *,
    transform: Transform,
    chance: float = 0.0,
    n_items: np.ndarray | float | None = None,
    eps: float = DEFAULT_EPS,
) -> np.ndarray:
    """Map scores to the latent scale; NaN stays NaN.

    Parameters
    ----------
    score : array_like
    transform : {"logit", "log", "identity"}
    chance : float, default 0
        Chance level (``"logit"`` only), in [0, 1).
    n_items : array_like, optional
        Item counts; where known, the clip is half an item instead of ``eps``.
    eps : float, default 1e-3

    Returns
    -------
    ndarray

    Examples
    --------
    >>> to_latent(np.array([0.25, 0.625, 1.0]), transform="logit", chance=0.25).round(3)
    array([-6.907,  0.   ,  6.907])
    """
    x = np.asarray(score, dtype=float)
    if transform == "logit":
        if not 0.0 <= chance < 1.0:
            raise TableError(f"chance={chance} must lie in [0, 1).\nHint: pass a fraction.")
        clip = np.full(x.shape, eps, dtype=float)
        if n_items is not None:
            items = np.broadcast_to(np.asarray(n_items, dtype=float), x.shape)
            clip = np.where(
                np.isfinite(items) & (items > 0), 0.5 / np.where(items > 0, items, 1), eps
            )
        share = (x - chance) / (1.0 - chance)
        share = np.clip(share, clip, 1.0 - clip)
        return logit(share)
    if transform == "log":
        return np.log(np.maximum(x, eps), where=np.isfinite(x), out=np.full(x.shape, np.nan))
    if transform == "identity":
        return x.copy()
    raise TableError(f"unknown transform {transform!r}.\nHint: use one of {_TRANSFORMS}.")


def from_latent(z: np.ndarray | float, *, transform: Transform, chance: float = 0.0) -> np.ndarray:
    """Map latent values back to scores (the inverse of :func:`to_latent` inside the clip).

    Examples
    --------
    >>> float(from_latent(0.0, transform="logit", chance=0.25))
    0.625
    """
    z = np.asarray(z, dtype=float)
    if transform == "logit":
        return chance + (1.0 - chance) * expit(z)
    if transform == "log":
        return np.exp(z)
    if transform == "identity":
        return z.copy()
    raise TableError(f"unknown transform {transform!r}.\nHint: use one of {_TRANSFORMS}.")


def table_latent(table: object, *, eps: float = DEFAULT_EPS) -> xr.DataArray:
    """Every score of a :class:`~bayesproxy.table.BenchmarkTable` on its latent scale.

    Parameters
    ----------
    table : BenchmarkTable
    eps : float, default 1e-3

    Returns
    -------
    xarray.DataArray
        Dims ``(unit, task, replicate)``, with a ``transform`` coordinate on ``task``.

    Examples
    --------
    >>> from bayesproxy.datasets import simulate
    >>> z = table_latent(simulate(n_families=2, random_seed=1).table)
    >>> z.dims
    ('unit', 'task', 'replicate')
    """
    ds = table.dataset  # type: ignore[attr-defined]
    score = ds["score"].values
    n_items = ds["n_items"].values
    out = np.full(score.shape, np.nan)
    names = []
    for j in range(ds.sizes["task"]):
        kind = str(ds["kind"].values[j])
        name = transform_for(kind, score[:, j, :])
        names.append(name)
        out[:, j, :] = to_latent(
            score[:, j, :],
            transform=name,
            chance=float(ds["chance"].values[j]),
            n_items=n_items[:, j, :],
            eps=eps,
        )
    latent = xr.DataArray(out, coords=ds["score"].coords, dims=ds["score"].dims, name="latent")
    return latent.assign_coords(transform=("task", names))
