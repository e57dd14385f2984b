"""Each forecaster on simulated tables where the right answer is known."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy.special import expit

from bayesproxy.errors import InsufficientTargetError, UnknownTaskError
from bayesproxy.methods import FORECAST_COLUMNS, MethodInputError, NotFittedError, get_method
from bayesproxy.table import BenchmarkTable

CUTOFF = 23.0  # log10 FLOPs: fit below, forecast above
CHANCE = 0.25


def simulate_truth(n: int = 80, *, seed: int = 0, n_rep: int = 2) -> xr.Dataset:
    """A table with known structure.

    Capability rises with log compute (plus a per-unit deviation); ``good_a`` and ``good_b``
    track it with small replicate noise, ``shaky`` tracks it too but its replicates disagree
    wildly, ``noise`` is unrelated, ``bpb`` is a loss following a compute power law, and the
    target is an emergent sigmoid of capability above chance 0.25.
    """
    rng = np.random.default_rng(seed)
    log_c = rng.uniform(20.0, 24.0, n)
    families = np.array([f"fam{i % 4}" for i in range(n)])
    theta = (log_c - 22.0) + rng.normal(0.0, 0.4, n)
    tasks = ["good_a", "good_b", "shaky", "noise", "bpb", "target"]
    score = np.empty((n, len(tasks), n_rep))
    for r in range(n_rep):
        score[:, 0, r] = expit(0.9 * theta) + rng.normal(0, 0.01, n)
        score[:, 1, r] = expit(0.7 * theta + 0.3) + rng.normal(0, 0.01, n)
        score[:, 2, r] = expit(0.8 * theta) + rng.normal(0, 0.25, n)
        score[:, 3, r] = rng.uniform(0.2, 0.8, n)
        score[:, 4, r] = 0.8 + 4e3 * (10.0**log_c) ** -0.17 + rng.normal(0, 0.005, n)
        score[:, 5, r] = CHANCE + (1 - CHANCE) * expit(-0.5 + 1.8 * theta) + rng.normal(0, 0.01, n)
    for k in (0, 1, 2, 3, 5):
        score[:, k] = np.clip(score[:, k], 0.0, 1.0)
    units = [f"m{i:02d}" for i in range(n)]
    dims = ("unit", "task", "replicate")
    return xr.Dataset(
        {
            "score": (dims, score),
            "stderr": (dims, np.full_like(score, np.nan)),
            "n_items": (dims, np.full_like(score, np.nan)),
        },
        coords={
            "unit": ("unit", np.array(units, dtype=object)),
            "model": ("unit", np.array(units, dtype=object)),
            "step": ("unit", np.full(n, np.nan)),
            "run": ("unit", np.array(units, dtype=object)),
            "family": ("unit", families.astype(object)),
            "params": ("unit", np.full(n, np.nan)),
            "tokens": ("unit", np.full(n, np.nan)),
            "flops": ("unit", 10.0**log_c),
            "task": ("task", np.array(tasks, dtype=object)),
            "chance": ("task", np.array([0, 0, 0, 0, 0, CHANCE])),
            "kind": ("task", np.array(["accuracy"] * 4 + ["metric", "accuracy"], dtype=object)),
            "higher_is_better": ("task", np.array([True] * 4 + [False, True])),
            "replicate": ("replicate", np.array([str(r) for r in range(n_rep)], dtype=object)),
        },
        attrs={"target": "target"},
    )


@pytest.fixture(scope="module")
def truth() -> xr.Dataset:
    return simulate_truth()


@pytest.fixture(scope="module")
def split(truth):
    """Training table (target hidden above the cutoff) and the true target there."""
    above = np.log10(truth["flops"].values) > CUTOFF
    train = truth.copy()
    hide = xr.DataArray(above, dims="unit") & (truth["task"] == "target")
    train["score"] = truth["score"].where(~hide)
    actual = truth["score"].sel(task="target").mean("replicate").values
    return BenchmarkTable(train), BenchmarkTable(truth), above, actual


@pytest.fixture(scope="module")
def fits(split):
    """Every deterministic method fitted once (small bootstrap to keep the suite quick)."""
    train = split[0]
    methods = {
        "compute-sigmoid": {},
        "proxy-selection": {"min_robustness": 0.5},
        "weighted-ensemble": {},
        "pca-sigmoid": {"benchmarks": ["good_a", "good_b", "shaky", "noise"], "n_components": 1},
        "loss-accuracy": {},
        "mean-proxy-sigmoid": {"proxies": ["good_a", "good_b"]},
    }
    return {
        name: get_method(name, target="target", n_boot=40, **opts).fit(train)
        for name, opts in methods.items()
    }


METHODS = [
    "compute-sigmoid",
    "proxy-selection",
    "weighted-ensemble",
    "pca-sigmoid",
    "loss-accuracy",
    "mean-proxy-sigmoid",
]


@pytest.mark.parametrize("name", METHODS)
def test_forecasts_the_hidden_units_accurately_and_within_bounds(fits, split, name):
    _, _, above, actual = split
    frame = fits[name].forecast(threshold=0.6)
    assert list(frame.columns) == list(FORECAST_COLUMNS)
    assert sorted(frame["unit"]) == sorted(np.asarray(split[1].dataset["unit"].values)[above])
    truth = actual[above][np.argsort(np.asarray(split[1].dataset["unit"].values)[above])]
    mean = frame.sort_values("unit")["mean"].to_numpy()
    mae = np.mean(np.abs(mean - truth))
    # capability (and so the target) carries unit-level deviations that compute cannot see
    assert mae < (0.12 if name in ("compute-sigmoid", "loss-accuracy") else 0.06), mae
    assert np.all((frame["mean"] >= CHANCE) & (frame["mean"] <= 1.0))
    assert np.all(frame["lower"] <= frame["median"]) and np.all(frame["median"] <= frame["upper"])
    assert frame["p_above"].between(0, 1).all()
    assert frame["distance"].notna().all()


@pytest.mark.parametrize("name", METHODS)
def test_predictive_samples_cover_the_truth(fits, split, name):
    _, full, above, actual = split
    draws = fits[name].predictive_samples(full, n_samples=400, random_seed=1)
    assert draws.dims == ("unit", "sample") and draws.shape == (80, 400)
    lo, hi = np.quantile(draws.values, [0.05, 0.95], axis=1)
    inside = (actual >= lo) & (actual <= hi)
    # interpolation (training range) is well covered; extrapolation may be worse
    assert inside[~above].mean() >= 0.75
    # reproducible with a seed
    again = fits[name].predictive_samples(full, n_samples=400, random_seed=1)
    np.testing.assert_array_equal(draws.values, again.values)


def test_compute_sigmoid_recovers_the_compute_curve():
    # target a pure sigmoid of log compute: the fit must find its slope and midpoint
    ds = simulate_truth(seed=5)
    log_c = np.log10(ds["flops"].values)
    clean = CHANCE + (1 - CHANCE) * expit(2.0 * (log_c - 22.0))
    ds["score"].loc[{"task": "target"}] = np.repeat(clean[:, None], 2, axis=1)
    fit = get_method("compute-sigmoid", target="target", n_boot=0).fit(BenchmarkTable(ds))
    link = fit.state_.link
    assert link.b == pytest.approx(2.0, rel=0.02)
    assert -link.a / link.b == pytest.approx(22.0, abs=0.02)
    assert fit.predictive_samples() is None  # no bootstrap: no uncertainty claimed
    frame = fit.forecast(BenchmarkTable(ds))
    assert frame["lower"].isna().all() and frame["p_above"].isna().all()


def test_compute_sigmoid_family_intercepts_find_the_offsets():
    ds = simulate_truth(seed=6, n=120)
    log_c = np.log10(ds["flops"].values)
    offset = {"fam0": -1.0, "fam1": 0.0, "fam2": 0.0, "fam3": 1.0}
    shift = np.array([offset[f] for f in ds["family"].values])
    clean = CHANCE + (1 - CHANCE) * expit(2.0 * (log_c - 22.0) + shift)
    ds["score"].loc[{"task": "target"}] = np.repeat(clean[:, None], 2, axis=1)
    table = BenchmarkTable(ds)
    plain = get_method("compute-sigmoid", target="target", n_boot=0).fit(table)
    per_family = get_method(
        "compute-sigmoid", target="target", n_boot=0, family_intercepts=True, family_ridge=1e-4
    ).fit(table)
    b = per_family.state_.link.b
    intercepts = dict(zip(per_family.state_.families, b[1:], strict=True))
    assert intercepts["fam3"] - intercepts["fam0"] == pytest.approx(2.0, abs=0.1)
    err_plain = np.abs(plain.forecast(table)["mean"] - clean).mean()
    err_family = np.abs(per_family.forecast(table)["mean"] - clean).mean()
    assert err_family < 0.2 * err_plain


def test_proxy_selection_picks_the_aligned_robust_proxies(fits):
    fit = fits["proxy-selection"]
    # the compute-driven loss is relevant too; noise and the unstable proxy are not chosen
    assert {"good_a", "good_b"} <= set(fit.selected_)
    assert not {"noise", "shaky"} & set(fit.selected_)
    table = fit.relevance_table()
    assert {"pearson", "spearman", "kendall", "robustness"} <= set(table.columns)
    assert table.loc["noise", "spearman"] < 0.2 < table.loc["good_a", "spearman"]
    assert table.loc["shaky", "robustness"] < 0.5 < table.loc["good_a", "robustness"]
    assert fit.weights_.sum() == pytest.approx(1.0)
    assert table.loc["noise", "weight"] == 0.0


def test_proxy_selection_top_k_and_explicit_pairs(split):
    train = split[0]
    top1 = get_method("proxy-selection", target="target", top_k=1, n_boot=0).fit(train)
    assert len(top1.selected_) == 1 and top1.selected_[0] in ("good_a", "good_b")
    units = [u for u in train.dataset["unit"].values if u in ("m00", "m01", "m02", "m03")]
    pairs = [(units[0], units[1]), (units[1], units[2]), (units[2], units[3]), (units[0], units[3])]
    assert len(units) == 4
    given = get_method(
        "proxy-selection", target="target", pairs=pairs, n_boot=0, min_relevance=-1.0
    ).fit(train)
    assert set(given.relevance_table()["n_pairs"]) == {4}


def test_proxy_selection_says_when_nothing_passes(split):
    with pytest.raises(MethodInputError, match="no proxy task passes"):
        get_method(
            "proxy-selection", target="target", proxies=["noise"], min_relevance=0.5, n_boot=0
        ).fit(split[0])


def test_weighted_ensemble_weights_rise_with_alignment_and_stability(fits):
    weights = fits["weighted-ensemble"].weight_table()
    assert weights.loc["good_a", "weight"] > weights.loc["shaky", "weight"]
    assert weights.loc["noise", "weight"] == 0.0
    assert weights.loc["shaky", "stability"] < weights.loc["good_a", "stability"]
    assert weights["weight"].sum() == pytest.approx(1.0)


def test_weighted_ensemble_bounded_extrapolation(split):
    train, full, _, _ = split
    ds = full.dataset.copy(deep=True)
    # push the first units' proxies far beyond anything seen in training
    ds["score"].loc[{"unit": ["m00", "m01"], "task": ["good_a", "good_b", "shaky"]}] = 1.0
    ds["score"].loc[{"unit": ["m02"], "task": ["good_a", "good_b", "shaky"]}] = 0.0
    far = BenchmarkTable(ds)
    fit = get_method("weighted-ensemble", target="target", n_boot=20).fit(train)
    frame = fit.forecast(far).set_index("unit")
    assert frame.loc[["m00", "m01", "m02"], "extrapolation"].all()
    assert (frame.loc[["m00", "m01", "m02"], "distance"] > 0).all()
    assert frame["mean"].between(CHANCE, 1.0).all()
    assert frame["lower"].between(0.0, 1.0).all() and frame["upper"].between(0.0, 1.0).all()
    clamped = get_method("weighted-ensemble", target="target", n_boot=0, max_distance=0.0)
    clamped.fit(train)
    at_edge = clamped.forecast(far).set_index("unit")
    inside = clamped.forecast(train).set_index("unit")
    # clamped at the training range: no forecast beyond the best training aggregate's
    assert at_edge["mean"].max() <= inside["mean"].max() + 1e-12


def test_pca_sigmoid_first_component_carries_the_capability(fits):
    fit = fits["pca-sigmoid"]
    assert fit.explained_variance_[0] > 0.5


def test_loss_accuracy_recovers_the_power_law(fits):
    fit = fits["loss-accuracy"]
    assert fit.loss_task_ == "bpb"
    assert fit.power_law_.alpha == pytest.approx(0.17, rel=0.15)


def test_forecast_a_table_without_the_target_task(fits, split):
    full = split[1]
    ds = full.dataset.drop_sel(task="target")
    ds.attrs["target"] = ""
    frame = fits["proxy-selection"].forecast(BenchmarkTable(ds))
    assert len(frame) == 80 and frame["mean"].notna().all()


def test_bad_input_fails_at_the_door(split):
    train = split[0]
    ds = train.dataset.assign_coords(flops=("unit", np.full(80, np.nan)))
    with pytest.raises(MethodInputError, match="FLOPs"):
        get_method("compute-sigmoid", target="target", n_boot=0).fit(BenchmarkTable(ds))
    no_loss = train.dataset.drop_sel(task="bpb")
    with pytest.raises(MethodInputError, match="loss-like"):
        get_method("loss-accuracy", target="target", n_boot=0).fit(BenchmarkTable(no_loss))
    with pytest.raises(UnknownTaskError, match="good_c"):
        get_method("mean-proxy-sigmoid", target="target", proxies=["good_c"]).fit(train)
    with pytest.raises(InsufficientTargetError):
        get_method("compute-sigmoid", target="target", min_train_units=500).fit(train)
    with pytest.raises(NotFittedError):
        get_method("pca-sigmoid", target="target").forecast()
    with pytest.raises(MethodInputError, match="n_components"):
        get_method(
            "pca-sigmoid", target="target", benchmarks=["good_a"], n_components=2, n_boot=0
        ).fit(train)


@pytest.mark.parametrize("seed", [0, 1])
def test_ensemble_recovers_the_simulators_alignment_and_stability(seed):
    from scipy import stats

    from bayesproxy import datasets

    sim = datasets.simulate(random_seed=seed)
    fit = get_method("weighted-ensemble", target=sim.table.target, n_boot=0).fit(sim.table)
    proxies = [str(p) for p in sim.truth.stability["proxy"].values]
    table = fit.weight_table().reindex(proxies)
    # the estimates rank the proxies as the simulation's true alignment and stability do
    assert stats.spearmanr(table["stability"], sim.truth.stability.values).statistic > 0.7
    assert stats.spearmanr(table["correlation"], sim.truth.alignment.values).statistic > 0.7


def test_unit_without_any_proxy_gets_nan_not_a_warning(fits, split):
    ds = split[1].dataset.copy(deep=True)
    ds["score"].loc[{"unit": "m05", "task": ["good_a", "good_b", "shaky", "noise", "bpb"]}] = np.nan
    frame = fits["proxy-selection"].forecast(BenchmarkTable(ds), threshold=0.5).set_index("unit")
    assert np.isnan(frame.loc["m05", ["mean", "lower", "upper", "p_above"]].astype(float)).all()
    assert frame.drop(index="m05")["mean"].notna().all()


def test_run_bootstrap_keeps_checkpoints_of_a_run_together():
    from bayesproxy.methods.bootstrap import bootstrap_rows

    runs = np.repeat(["r0", "r1", "r2", "r3"], 3)
    for draw in bootstrap_rows(np.arange(12), n_boot=20, groups=runs, random_seed=3):
        counts = np.bincount(draw, minlength=12).reshape(4, 3)
        # every run is drawn whole: its three checkpoints appear equally often
        assert (counts == counts[:, :1]).all()
        assert len(draw) == 12


def test_run_bootstrap_forecaster_and_bad_option(split):
    ds = split[0].dataset.assign_coords(run=("unit", [f"run{i % 8}" for i in range(80)]))
    fit = get_method("compute-sigmoid", target="target", n_boot=30, resample="run")
    frame = fit.fit(BenchmarkTable(ds)).forecast()
    assert frame["upper"].gt(frame["lower"]).all()
    with pytest.raises(MethodInputError, match="resample"):
        get_method("compute-sigmoid", target="target", resample="family")
