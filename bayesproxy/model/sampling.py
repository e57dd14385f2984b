"""Sample the proxy model with nutpie, on the hand-written density or on PyMC's graph.

:func:`sample_model` picks the density: the default model (one factor, Binomial target) runs
on :mod:`bayesproxy.model.density`, compiled once per installation; every other model is
compiled from its PyMC graph, once per model structure and process (below).

Compiling the model to machine code (numba, through nutpie) costs far more than sampling a
small table. Every array of a table enters the model as ``pm.Data``, so two tables with the
same shapes and structure share one compiled sampler: the second fit (a refit on updated
scores, a backtest fold of the same size, a simulation of a calibration run) swaps the data
in with ``with_data`` and goes straight to sampling.

Only the free parameters (plus, with several factors, the capability) are written by the
sampler; every other named quantity is computed afterwards in NumPy
(:mod:`bayesproxy.model.derived`), because each extra output lengthens compilation.

Examples
--------
>>> structure_key(None, extra=("demo",))[:8]  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

__all__ = [
    "DENSITIES",
    "SamplerSettings",
    "clear_cache",
    "run_nutpie",
    "sample_model",
    "sample_nutpie",
    "structure_key",
    "uses_hand_written",
]

#: How a fit evaluates the log density: ``"auto"`` uses the hand-written one-factor density
#: (:mod:`bayesproxy.model.density`) wherever it applies and PyMC's compiled graph
#: elsewhere; ``"pymc"`` always compiles the graph.
DENSITIES = ("auto", "pymc")


@dataclass(frozen=True)
class SamplerSettings:
    """How nutpie samples a fit: the same for either density.

    Examples
    --------
    >>> SamplerSettings(draws=1000, tune=1000, chains=4, seed=0).target_accept
    0.9
    """

    draws: int
    tune: int
    chains: int
    seed: int
    target_accept: float = 0.9
    progressbar: bool = False


#: Compiled samplers kept per process (least recently used dropped first).
CACHE_SIZE = 4
_CACHE: OrderedDict[str, Any] = OrderedDict()


def _data_vars(model: Any) -> dict[str, Any]:
    return {var.name: var for var in model.data_vars}


def structure_key(model: Any, *, extra: Any = ()) -> str:
    """Hash of everything the compiled sampler depends on apart from data values.

    Parameters
    ----------
    model : pymc.Model
    extra : any JSON-serialisable value
        Constants baked into the graph (priors, chance level, parametrisation choices).

    Returns
    -------
    str
        A SHA-256 hex digest.
    """
    parts = {
        "data": sorted(
            (name, list(np.shape(var.get_value())), str(var.dtype))
            for name, var in _data_vars(model).items()
        ),
        "variables": sorted(model.named_vars),
        "dims": {name: len(values) for name, values in model.coords.items()},
        "extra": extra,
    }
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def clear_cache() -> None:
    """Forget every compiled sampler of this process."""
    _CACHE.clear()


def _compiled(model: Any, *, var_names: list[str], key: str) -> tuple[Any, bool]:
    import nutpie

    hit = key in _CACHE
    if hit:
        _CACHE.move_to_end(key)
        compiled = _CACHE[key]
        # data the log density does not read (e.g. labels for derived quantities) were
        # pruned from the compiled graph
        used = {var.name for var in compiled.shared_var_keys}
        values = {name: var.get_value() for name, var in _data_vars(model).items() if name in used}
        return compiled.with_data(**values), True
    compiled = nutpie.compile_pymc_model(model, var_names=var_names)
    _CACHE[key] = compiled
    while len(_CACHE) > CACHE_SIZE:
        _CACHE.popitem(last=False)
    return compiled, False


def run_nutpie(compiled: Any, settings: SamplerSettings) -> Any:
    """Run nutpie on a compiled model, at most two chains in parallel.

    Returns
    -------
    The trace :func:`nutpie.sample` returns.
    """
    import nutpie

    return nutpie.sample(
        compiled,
        draws=settings.draws,
        tune=settings.tune,
        chains=settings.chains,
        cores=min(settings.chains, 2),
        seed=settings.seed,
        target_accept=settings.target_accept,
        progress_bar=settings.progressbar,
        # nothing reads the tuning draws: not keeping them saves their conversion
        save_warmup=False,
    )


def sample_nutpie(
    model: Any, *, var_names: list[str], key: str, settings: SamplerSettings
) -> tuple[xr.DataTree, bool]:
    """Sample ``model`` (compiling it unless a sampler of the same structure is cached).

    Parameters
    ----------
    model : pymc.Model
    var_names : list of str
        Variables the sampler writes to the posterior.
    key : str
        From :func:`structure_key`.
    settings : SamplerSettings

    Returns
    -------
    trace : xarray.DataTree
        ``posterior`` and ``sample_stats``, labelled with this model's coordinates.
    reused : bool
        Whether a compiled sampler was reused.
    """
    compiled, reused = _compiled(model, var_names=var_names, key=key)
    trace = run_nutpie(compiled, settings)
    posterior = trace["posterior"].to_dataset()
    # a reused sampler still carries the labels of the table it was compiled for
    labels = {
        dim: list(values)
        for dim, values in model.coords.items()
        if dim in posterior.dims and posterior.sizes[dim] == len(values)
    }
    posterior = posterior.assign_coords(labels)
    out = xr.DataTree.from_dict(
        {"posterior": posterior, "sample_stats": trace["sample_stats"].to_dataset()}
    )
    return out, reused


def uses_hand_written(design: Any, *, n_factors: int, density: str = "auto") -> bool:
    """Whether :func:`sample_model` samples this design on the hand-written density."""
    from bayesproxy.model import density as hand_written

    return density == "auto" and hand_written.supports(design, n_factors=n_factors)


def sample_model(
    model: Any,
    design: Any,
    *,
    priors: dict[str, float],
    var_names: list[str],
    key: str,
    settings: SamplerSettings,
    density: str = "auto",
) -> tuple[xr.DataTree, bool, str]:
    """Sample ``model`` with nutpie on the density ``density`` selects.

    Parameters
    ----------
    model : pymc.Model or ModelSpec
        A :class:`~bayesproxy.model.spec.ModelSpec` only where the hand-written density
        applies (see :func:`uses_hand_written`).
    design : Design
        The design ``model`` was built from.
    priors : dict
    var_names, key, settings
        As for :func:`sample_nutpie` (the hand-written density writes the free parameters).
    density : {"auto", "pymc"}
        See :data:`DENSITIES`.

    Returns
    -------
    trace : xarray.DataTree
    reused : bool
        Whether compiled code was reused: the hand-written density counts as reused once
        this process has loaded it.
    used : str
        ``"hand-written"`` or ``"pymc"``.
    """
    from bayesproxy.model import density as hand_written
    from bayesproxy.model.native import sample_native

    if density not in DENSITIES:
        raise ValueError(f"density must be one of {DENSITIES}, got {density!r}")
    from bayesproxy.model.spec import ModelSpec

    n_factors = len(model.coords["factor"])
    if uses_hand_written(design, n_factors=n_factors, density=density):
        reused = hand_written.is_loaded()
        trace = sample_native(model, design, priors=priors, settings=settings)
        return trace, reused, "hand-written"
    if isinstance(model, ModelSpec):  # the caller's mistake: PyMC's graph is needed here
        raise TypeError("this model needs its PyMC graph; pass the built pymc.Model.")
    trace, reused = sample_nutpie(model, var_names=var_names, key=key, settings=settings)
    return trace, reused, "pymc"
