"""What the hand-written sampler needs of the PyMC model: free variables, dimensions, labels.

On the hand-written density (:mod:`bayesproxy.model.density`) a fit never evaluates the PyMC
graph: it needs the model's free variables (their names, the order PyMC lists them in, their
dimensions) and the design's coordinates. Building the PyMC model for those took 0.35-0.45 s,
a twentieth of a warm fit of the reference table. The free variables and their dimensions
depend on the design only through a few yes-or-no facts, its :func:`signature` (is any
compute known, are there runs, which kinds of replicate noise, is the ceiling learned, ...),
so :func:`model_spec` reads them off the first model it builds for each signature and keeps
them; the coordinates come from :func:`~bayesproxy.model.build.model_coords`, the function
:func:`~bayesproxy.model.build.build_model` itself calls.

Examples
--------
>>> import numpy as np, xarray as xr
>>> from bayesproxy.model.design import build_design
>>> from bayesproxy.model.priors import resolve_priors
>>> ds = xr.Dataset(
...     {"score": (("unit", "task", "replicate"), np.linspace(0.3, 0.8, 8).reshape(4, 2, 1))},
...     coords={"unit": list("abcd"), "task": ["p", "t"], "replicate": ["0"]},
... )
>>> spec = model_spec(build_design(ds, target="t"), priors=resolve_priors(), n_factors=1)
>>> spec.dims["proxy_intercept"], spec.coords["proxy"]
(('proxy',), ['p'])
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from bayesproxy.model.design import Design

__all__ = ["ModelSpec", "model_spec", "signature", "spec_of"]


@dataclass(frozen=True)
class ModelSpec:
    """The free variables of a built model and the coordinates of a design."""

    free_names: tuple[str, ...]  # model.free_RVs, in PyMC's order
    value_names: tuple[str, ...]  # model.value_vars (e.g. ``unique_sd_log__``)
    dims: dict[str, tuple[str, ...]]  # model.named_vars_to_dims, of the free variables
    coords: dict[str, Any]  # model.coords


def spec_of(model: Any) -> ModelSpec:
    """Read a :class:`ModelSpec` off a built PyMC model."""
    free = tuple(rv.name for rv in model.free_RVs)
    dims = {name: tuple(d) for name, d in model.named_vars_to_dims.items() if name in free}
    return ModelSpec(
        free_names=free,
        value_names=tuple(v.name for v in model.value_vars),
        dims=dims,
        coords={name: list(values) for name, values in model.coords.items()},
    )


def signature(design: Design, *, priors: dict[str, float], n_factors: int) -> tuple:
    """Everything about a design and priors that decides which free variables a model has.

    Two designs with the same signature give models with the same free variables, in the
    same order and with the same dimensions (a test holds this for every branch of
    :func:`~bayesproxy.model.build.build_model`).
    """
    from bayesproxy.model.build import hierarchy, noise_split

    strong, weak = noise_split(design)
    return (
        int(n_factors),
        bool(np.isfinite(design.x).any()),  # a compute slope
        hierarchy(design).use_runs,  # run effects
        len(strong) > 0,  # centred replicate noise
        len(weak) > 0,  # non-centred replicate noise
        math.isnan(priors["ceiling"]),  # a learned ceiling
        design.likelihood,
    )


#: Free variables per signature, read off the first model built for it in this process.
_SPECS: dict[tuple, ModelSpec] = {}


def model_spec(design: Design, *, priors: dict[str, float], n_factors: int) -> ModelSpec:
    """Return the :class:`ModelSpec` of :func:`~bayesproxy.model.build.build_model` for ``design``.

    Builds the PyMC model only for the first design of its :func:`signature` in this
    process; later ones take its free variables and their own coordinates.
    """
    from bayesproxy.model.build import build_model, model_coords

    key = signature(design, priors=priors, n_factors=n_factors)
    if key not in _SPECS:
        _SPECS[key] = spec_of(build_model(design, priors=priors, n_factors=n_factors))
    known = _SPECS[key]
    return ModelSpec(
        free_names=known.free_names,
        value_names=known.value_names,
        dims=dict(known.dims),  # a copy: the cached one stays as built
        coords={
            name: list(values) for name, values in model_coords(design, n_factors=n_factors).items()
        },
    )
