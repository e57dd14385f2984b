"""Fixtures shared across the test suite.

Anything that samples or compiles a PyMC model is session-scoped: with pytest-xdist each
worker builds it once.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")  # headless: tests never open a window

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_path() -> Path:
    """Where the real benchmark tables live (never part of the repository)."""
    override = os.environ.get("BAYESPROXY_SHARED_DATA")
    return Path(override) if override else REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The real-data folder, or a skip saying why the test cannot run."""
    path = shared_data_path()
    if not path.is_dir():
        pytest.skip(
            f"real benchmark data not found at {path}; set BAYESPROXY_SHARED_DATA to run this test"
        )
    return path


@pytest.fixture(scope="session")
def simulated_table():
    """A small simulated table with known truth; the target is hidden on 20% of units."""
    from bayesproxy import datasets

    return datasets.simulate(holdout_share=0.2, random_seed=0)


@pytest.fixture(scope="session")
def fitted_forecaster(request: pytest.FixtureRequest):
    """A small real fit of the proxy model on ``simulated_table`` (2 chains x 300 draws).

    The convergence gate's ConvergenceWarning is silenced for this small budget (the gate
    has its own tests); everything else warns as usual.
    """
    import warnings

    from bayesproxy.errors import ConvergenceWarning
    from bayesproxy.model import ProxyForecaster

    table = request.getfixturevalue("simulated_table").table
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return ProxyForecaster(target=table.target or "target").fit(
            table, draws=300, tune=300, chains=2, random_seed=0
        )
