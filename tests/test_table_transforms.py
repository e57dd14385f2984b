import numpy as np
import pytest

from bayesproxy.datasets import simulate
from bayesproxy.errors import TableError
from bayesproxy.transforms import from_latent, table_latent, to_latent, transform_for


def test_logit_above_chance_round_trip_inside_clip():
    x = np.array([0.3, 0.5, 0.9, np.nan])
    z = to_latent(x, transform="logit", chance=0.25)
    np.testing.assert_allclose(from_latent(z[:3], transform="logit", chance=0.25), x[:3])
    assert np.isnan(z[3])


def test_clipping_at_and_below_chance_uses_half_an_item():
    z = to_latent(np.array([0.1, 0.25, 1.0]), transform="logit", chance=0.25, n_items=100)
    share = from_latent(z, transform="logit", chance=0.0)
    np.testing.assert_allclose(share, [0.005, 0.005, 0.995])
    assert np.all(np.isfinite(z))


def test_log_and_identity():
    np.testing.assert_allclose(to_latent(np.array([1.0, np.e]), transform="log"), [0, 1])
    assert np.isfinite(to_latent(np.array([0.0]), transform="log")).all()
    assert transform_for("metric", np.array([-0.5, 1.0])) == "identity"
    with pytest.raises(TableError):
        to_latent(np.array([0.5]), transform="probit")


def test_table_latent_matches_generating_scale():
    sim = simulate(n_families=3, random_seed=2)
    z = table_latent(sim.table)
    assert z.dims == ("unit", "task", "replicate")
    kinds = sim.table.task_info.kind
    assert set(z.transform.values[(kinds == "metric").to_numpy()]) == {"log"}
    assert np.isfinite(z.values).all()
    # the target's latent rises with its true probability
    t = z.sel(task="target").mean("replicate").values
    assert np.corrcoef(t, sim.truth.target_p.values)[0, 1] > 0.8
