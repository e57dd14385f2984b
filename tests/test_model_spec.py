"""A fit on the hand-written density reads its model's free variables off a cached spec.

``model_spec`` builds the PyMC model only for the first design of each signature in a
process. These tests hold that, for every branch of ``build_model`` the signature names, a
spec primed by another design of the same signature equals the one read off the design's
own built model: free variables, value variables, dimensions and coordinates.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from bayesproxy.datasets import simulate
from bayesproxy.model import spec as spec_module
from bayesproxy.model.build import build_model
from bayesproxy.model.density import pack
from bayesproxy.model.design import build_design
from bayesproxy.model.priors import resolve_priors
from bayesproxy.model.spec import model_spec, signature, spec_of


def _design(variant: str, seed: int):
    runs = 1 if variant == "no runs" else 2
    sim = simulate(
        n_families=3,
        n_runs_per_family=runs,
        n_checkpoints=4,
        n_proxies=5,
        n_replicates=1 if variant == "no replicates" else 3,
        holdout_share=0.25,
        random_seed=seed,
    )
    design = build_design(sim.table, target=sim.table.target)
    if variant == "no compute":
        design = replace(design, x=np.full_like(design.x, np.nan))
    elif variant == "beta likelihood":  # no item counts
        design = replace(design, target_n_items=np.full_like(design.target_n_items, np.nan))
    return design


CASES = {
    "reference": ({}, 1),
    "fixed ceiling": ({"ceiling": 0.9}, 1),
    "no compute": ({}, 1),
    "no runs": ({}, 1),
    "no replicates": ({}, 1),
    "beta likelihood": ({}, 1),
    "two factors": ({}, 2),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_cached_spec_equals_the_built_models(case, monkeypatch):
    overrides, n_factors = CASES[case]
    priors = resolve_priors(overrides)
    design, other = _design(case, 1), _design(case, 2)
    assert signature(design, priors=priors, n_factors=n_factors) == signature(
        other, priors=priors, n_factors=n_factors
    )
    monkeypatch.setattr(spec_module, "_SPECS", {})
    model_spec(other, priors=priors, n_factors=n_factors)  # builds and keeps other's model
    got = model_spec(design, priors=priors, n_factors=n_factors)
    want = spec_of(build_model(design, priors=priors, n_factors=n_factors))
    assert got.free_names == want.free_names
    assert got.value_names == want.value_names
    assert got.dims == want.dims
    assert got.coords.keys() == want.coords.keys()
    for name, labels in want.coords.items():
        assert list(got.coords[name]) == list(labels), name
    if case == "fixed ceiling":
        assert "ceiling_frac" not in got.free_names and math.isfinite(priors["ceiling"])


def test_the_signature_tells_the_branches_apart():
    priors = resolve_priors()
    keys = {
        signature(_design(case, 1), priors=resolve_priors(overrides), n_factors=n)
        for case, (overrides, n) in CASES.items()
    }
    assert len(keys) == len(CASES)
    assert signature(_design("reference", 1), priors=priors, n_factors=1) != signature(
        _design("reference", 1), priors=priors, n_factors=2
    )


def test_pack_reads_a_spec_as_it_reads_the_model():
    priors = resolve_priors()
    design = _design("reference", 1)
    from_model = pack(design, build_model(design, priors=priors, n_factors=1), priors=priors)
    from_spec = pack(design, model_spec(design, priors=priors, n_factors=1), priors=priors)
    np.testing.assert_array_equal(from_model.blob, from_spec.blob)
    assert from_model.layout == from_spec.layout
