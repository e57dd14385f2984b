import time

import numpy as np
import pytest

from bayesproxy.datasets import load_example, simulate
from bayesproxy.errors import BayesproxyError
from bayesproxy.table import BenchmarkTable


def test_deterministic_per_seed():
    a, b = simulate(random_seed=3), simulate(random_seed=3)
    assert a.table == b.table
    assert simulate(random_seed=4).table != a.table


def test_shape_and_truth():
    sim = simulate(
        n_families=3,
        n_runs_per_family=2,
        n_checkpoints=4,
        n_proxies=6,
        n_replicates=3,
        random_seed=1,
    )
    table = sim.table
    assert (table.n_units, table.n_tasks, table.n_replicates) == (24, 7, 3)
    assert table.target == "target"
    assert table.proxies == [f"proxy_{k}" for k in range(6)]
    assert list(sim.truth.alignment.proxy.values) == table.proxies
    assert list(sim.truth.capability.unit.values) == list(table.units.index)
    assert np.all((sim.truth.alignment > 0) & (sim.truth.alignment < 1))
    assert np.all((sim.truth.stability > 0) & (sim.truth.stability < 1))
    info = table.task_info
    assert set(info.loc[info.kind == "metric"].index) <= set(table.proxies)
    assert not info.loc[info.kind == "metric", "higher_is_better"].any()
    acc = table.score.sel(task=info.index[info.kind == "accuracy"].tolist())
    assert float(acc.min()) >= 0 and float(acc.max()) <= 1


def test_target_emerges_from_chance_floor():
    sim = simulate(n_families=4, random_seed=2, emergence=0.7)
    p = sim.truth.target_p
    assert float(p.min()) >= 0.25 and float(p.min()) < 0.27  # small units sit at chance
    assert float(p.max()) > 0.7
    obs = sim.table.score.sel(task="target").mean("replicate")
    # Binomial noise: observed target close to but not equal to the truth
    assert 0 < float(np.abs(obs - p).max()) < 0.15


def test_capability_grows_with_compute():
    sim = simulate(n_families=4, random_seed=5)
    logc = np.log10(sim.table.units["flops"].to_numpy())
    theta = sim.truth.capability.sel(factor=0).values
    assert np.corrcoef(logc, theta)[0, 1] > 0.7


def test_aligned_stable_proxy_tracks_capability_better():
    sim = simulate(n_proxies=8, n_replicates=2, random_seed=0, n_families=6)
    theta = sim.truth.capability.sel(factor=0).values
    corr = {}
    for proxy in sim.table.proxies:
        s = sim.table.score.sel(task=proxy).mean("replicate").values
        corr[proxy] = abs(
            np.corrcoef(s if sim.table.task_info.kind[proxy] == "accuracy" else np.log(s), theta)[
                0, 1
            ]
        )
    quality = (sim.truth.alignment * np.sqrt(sim.truth.stability)).to_series()
    assert corr[quality.idxmax()] > corr[quality.idxmin()] + 0.3


def test_missing_and_holdout():
    sim = simulate(missing=0.2, holdout_share=0.25, random_seed=7)
    proxies = sim.table.score.sel(task=sim.table.proxies)
    assert 0.15 < float(proxies.isnull().mean()) < 0.25
    hidden = ~sim.table.target_observed
    assert hidden.sum() == 15
    flops = sim.table.units["flops"]
    assert flops[hidden].min() >= flops[~hidden].max()


def test_fast():
    simulate()
    start = time.perf_counter()
    simulate(random_seed=11)
    assert time.perf_counter() - start < 0.2


def test_bad_arguments():
    with pytest.raises(BayesproxyError, match="n_proxies"):
        simulate(n_proxies=0)
    with pytest.raises(BayesproxyError, match="target_chance"):
        simulate(target_chance=0.99, target_ceiling=0.9)


def test_load_example_is_fixed_and_round_trips():
    a, b = load_example(), load_example()
    assert a.table == b.table
    assert a.table.n_units == 90
    again = BenchmarkTable.from_dataframe(a.table.to_dataframe(), target="target")
    assert again == a.table
