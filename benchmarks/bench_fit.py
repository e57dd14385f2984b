"""Wall time of a converged proxy-model fit (cold and warm) and of forecasting new units.

Reference table: ``datasets.simulate(n_families=5, n_runs_per_family=3, n_checkpoints=10,
n_proxies=39, n_replicates=3, holdout_share=0.2)``: 150 units x 40 tasks (39 proxies and the
target) x 3 replicates. For each MCMC setting (``CHAINSxDRAWS/TUNE``; default the fit's own
4x2000/1000 and a lighter 4x1000/1000) one fresh subprocess runs, in order:

1. ``import``: ``bayesproxy``, ``pymc``, ``nutpie``, ``arviz`` (what a new process pays);
2. ``cold fit``: the first fit of the process, split into model compilation
   (``nutpie.compile_pymc_model``, or loading the hand-written density from numba's disk
   cache), sampling (``nutpie.sample``) and the rest (design, model
   graph, derived quantities, predictive groups, convergence gate), each timed by wrapping
   the real function;
3. ``warm fit``: a second fit in the same process on a new simulated table of the same
   shapes (another seed), which reuses the compiled sampler;
4. ``forecast``: ``fc.forecast(table)`` on ``--forecast-units`` units given as a new
   table (proxies only, no target: the reference table's units repeated as distinct runs;
   a conjugate update per posterior draw, no MCMC), repeated ``--forecast-repeat`` times.

With ``--baseline-rev REV`` the same phases first run on the ``bayesproxy`` of that git
revision (rows marked ``b:``), so before and after share one run's machine load.

The settings run back to back in one invocation, so they see comparable machine load; the
1-minute load average and the process CPU time are recorded around every phase (CPU / wall
above 1 means the two cores were both used). A fit that fails the convergence gate does not
count as meeting a floor. The children import the committed ``bayesproxy`` of HEAD,
extracted to a temporary directory (``--working-tree``: the working tree as it is), so edits
made to the working tree during the run cannot mix into the figures. ``--empty-cache``
adds a cold fit with empty PyTensor and numba caches (a first fit after installation;
normally the on-disk numba cache survives between processes). Before the timed processes,
one process runs a tiny fit and forecasts (its own units, and a new table) on the freshly
extracted code, so that numba caches the package's own kernels (the hand-written density,
the forecast's update, design and quantiles) as the first use after an installation does;
its time is reported apart.

``--forecast-only`` times only the forecast: one process fits once at the first setting
(convergence does not matter here: the fit only provides 1,000 posterior draws, which
``2x500/500`` already gives) and saves the fit, then a fresh process per code version loads
it and times ``fc.forecast(table)`` as in phase 4. With ``--baseline-rev REV`` the
``bayesproxy`` of that git revision is timed first, in the same run, on the same saved fit
(before / after side by side); ``--rounds N`` runs N processes per version, alternating
between the versions (each first in every other round), and pools their calls, so that
the machine's drift over minutes falls on both alike. Its figures go to
``benchmarks/baseline_forecast.json`` unless ``--output`` says otherwise.

Usage::

    python benchmarks/bench_fit.py [--settings 4x2000/1000,4x1000/1000] [--seed 0]
        [--forecast-units 10000] [--forecast-repeat 3] [--empty-cache] [--working-tree]
        [--baseline-rev REV] [--output benchmarks/baseline_fit.json]
    python benchmarks/bench_fit.py --forecast-only --settings 2x500/500
        [--baseline-rev REV] [--forecast-units 10000] [--forecast-repeat 5] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
#: Floors from the issue, in seconds (cold: imports + first fit in a new process).
FLOORS = {"cold_fit": 30.0, "warm_fit": 10.0, "forecast": 1.0}
REFERENCE = dict(
    n_families=5,
    n_runs_per_family=3,
    n_checkpoints=10,
    n_proxies=39,
    n_replicates=3,
    holdout_share=0.2,
)
#: Steps of ``ProxyForecaster.forecast(table)`` timed separately (functions it calls).
FORECAST_STEPS = (
    "param_draws",
    "build_design",
    "conjugate_capability",
    "one_factor_capability",
    "distances",
    "target_draws",
    "observed_score_draws",
    "make_forecast_frame",
)
PACKAGES = ("bayesproxy", "pymc", "pytensor", "nutpie", "numba", "arviz", "numpy", "xarray")


# ---------------------------------------------------------------------------- child process
def _load1() -> float:
    return os.getloadavg()[0]


class _Phase:
    """Wall and CPU time of a block, with the 1-minute load average before and after."""

    def __enter__(self) -> _Phase:
        self.load_before = _load1()
        self._cpu = time.process_time()
        self._wall = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._wall
        self.cpu_seconds = time.process_time() - self._cpu
        self.load_after = _load1()

    def record(self) -> dict[str, float]:
        return {
            "seconds": self.seconds,
            "cpu_seconds": self.cpu_seconds,
            "load1_before": self.load_before,
            "load1_after": self.load_after,
        }


def _fit_phase(fc: Any, table: Any, timings: dict[str, list[float]], setting: dict) -> dict:
    import warnings

    for values in timings.values():
        values.clear()
    with warnings.catch_warnings(record=True) as caught, _Phase() as phase:
        warnings.simplefilter("always")
        fc.fit(
            table,
            draws=setting["draws"],
            tune=setting["tune"],
            chains=setting["chains"],
            random_seed=setting["seed"],
            progressbar=False,
        )
    diag = fc.diagnostics()
    sampler = json.loads(fc.datatree.attrs["sampler"])
    steps = fc.datatree["sample_stats"]["n_steps"]
    compile_s = sum(timings["compile"])
    sample_s = sum(timings["sample"])
    return {
        **phase.record(),
        "compile_seconds": compile_s,
        "sample_seconds": sample_s,
        "other_seconds": phase.seconds - compile_s - sample_s,
        "compiled_sampler_reused": bool(sampler["compiled_sampler_reused"]),
        "converged": bool(fc.converged),
        "rhat_max": float(diag["rhat"].max()),
        "ess_bulk_min": float(diag["ess_bulk"].min()),
        "ess_tail_min": float(diag["ess_tail"].min()),
        "divergences": int(diag.attrs["divergences"]),
        "failing": diag.index[~diag["ok"].astype(bool)].tolist(),
        "mean_leapfrog_steps": float(steps.mean()),
        "warnings": sorted({type(w.message).__name__ for w in caught}),
    }


def forecast_table(n_units: int, *, random_seed: int) -> Any:
    """``n_units`` units with proxies only: the reference table's runs, repeated."""
    from bayesproxy.datasets import simulate

    base = simulate(**{**REFERENCE, "holdout_share": 0.0}, random_seed=random_seed).table
    return repeated_units(base, n_units)


def repeated_units(base: Any, n_units: int) -> Any:
    """``base``'s units, target dropped, repeated as distinct runs up to ``n_units``."""
    import numpy as np

    from bayesproxy.table import BenchmarkTable

    base = base.select(tasks=base.proxies)
    ds = base.dataset
    index = np.resize(np.arange(ds.sizes["unit"]), n_units)
    copy = np.arange(n_units) // ds.sizes["unit"]
    ds = ds.isel(unit=index)
    relabel = {
        name: ("unit", [f"{v}#{c}" for v, c in zip(ds[name].values, copy, strict=True)])
        for name in ("unit", "model", "run")
    }
    return BenchmarkTable(ds.assign_coords(relabel), min_target_units=0)


def child(spec: dict) -> dict:
    """Run the phases of one setting in this (fresh) process and return the figures."""
    out: dict[str, Any] = {"setting": spec, "load1_start": _load1()}
    with _Phase() as phase:
        import arviz  # noqa: F401
        import nutpie
        import pymc  # noqa: F401

        import bayesproxy
        from bayesproxy.datasets import simulate
    out["import"] = phase.record()
    out["bayesproxy_path"] = str(Path(bayesproxy.__file__).parent)

    # time the real compile and sample calls (sampling.py looks them up on the module) and
    # the steps of a forecast (looked up in the forecaster's module)
    import bayesproxy.model.forecaster as forecaster_module

    timings: dict[str, list[float]] = {name: [] for name in ("compile", *FORECAST_STEPS)}
    timings["sample"] = []

    def timed(name: str, func: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                timings[name].append(time.perf_counter() - start)

        return wrapper

    import bayesproxy.model.density as density_module

    nutpie.compile_pymc_model = timed("compile", nutpie.compile_pymc_model)
    # the hand-written density: compiled on first use after installation, then loaded
    # from numba's disk cache by each new process
    density_module._kernels = timed("compile", density_module._kernels)
    nutpie.sample = timed("sample", nutpie.sample)
    for name in FORECAST_STEPS:
        if hasattr(forecaster_module, name):  # an older revision may lack a step
            setattr(forecaster_module, name, timed(name, getattr(forecaster_module, name)))

    if spec.get("warm_up"):  # what the first use after installation compiles, once
        small = simulate(n_families=2, n_runs_per_family=2, n_checkpoints=3, random_seed=0)
        with _Phase() as phase:
            tiny = bayesproxy.ProxyForecaster(target=small.table.target)
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tiny.fit(small.table, draws=20, tune=20, chains=1, random_seed=0)
                tiny.forecast()
                # a new table, large enough for every kernel of forecast(table) (the frame's
                # compiled quantiles start at 2**16 samples): else the timed processes'
                # first forecast would compile them
                tiny.forecast(repeated_units(small.table, 4000))
        out["warm_up"] = phase.record()
        return out

    # new units, built first so that a problem shows before the long fits: the fitted
    # table's 150 units (target dropped, none hidden) repeated as distinct runs ("#copy"
    # appended to unit, model and run labels) up to --forecast-units. Another seed would
    # not do: simulate() draws per seed which proxies are loss-like, and a forecast table
    # must measure each proxy the way the fitted one did.
    with _Phase() as phase:
        new = forecast_table(spec["forecast_units"], random_seed=spec["seed"])
    out["forecast_table"] = phase.record()

    if spec.get("load_fit"):  # --forecast-only: forecast with a saved fit
        with _Phase() as phase:
            fc = bayesproxy.ProxyForecaster.load(spec["load_fit"])
        out["load_fit"] = phase.record()
        out["forecast"] = _forecast_phase(fc, new, timings, spec["forecast_repeat"])
        return out

    with _Phase() as phase:
        table = simulate(**REFERENCE, random_seed=spec["seed"]).table
    out["simulate"] = phase.record()
    out["table"] = {
        "units": table.n_units,
        "tasks": table.n_tasks,
        "replicates": table.n_replicates,
        "target_observed": int(table.target_observed.sum()),
    }
    fc = bayesproxy.ProxyForecaster(target=table.target)
    out["cold_fit"] = _fit_phase(fc, table, timings, spec)
    if spec.get("save_fit"):
        fc.save(spec["save_fit"])
    if spec["cold_only"]:
        return out

    warm_table = simulate(**REFERENCE, random_seed=spec["seed"] + 1).table
    warm = bayesproxy.ProxyForecaster(target=warm_table.target)
    out["warm_fit"] = _fit_phase(warm, warm_table, timings, spec)

    out["forecast"] = _forecast_phase(fc, new, timings, spec["forecast_repeat"])
    return out


def _forecast_phase(fc: Any, new: Any, timings: dict[str, list[float]], repeat: int) -> dict:
    """Time ``repeat`` calls of ``fc.forecast(new)``, with the steps of each."""
    runs = []
    for _ in range(repeat):
        for values in timings.values():
            values.clear()
        with _Phase() as phase:
            frame = fc.forecast(new)
        runs.append({**phase.record(), **{f"{k}_seconds": sum(timings[k]) for k in FORECAST_STEPS}})
    seconds = [r["seconds"] for r in runs]
    return {
        "units": len(frame),
        "proxies": len(new.proxies),
        "runs": runs,
        "seconds_first": seconds[0],
        "seconds_median": statistics.median(seconds),
        "seconds_min": min(seconds),
        "seconds_max": max(seconds),
        "steps_median_seconds": {
            k: statistics.median(r[f"{k}_seconds"] for r in runs) for k in FORECAST_STEPS
        },
        "finite": bool(frame[["mean", "lower", "upper"]].notna().all().all()),
        "extrapolation_share": float(frame["extrapolation"].mean()),
        # a fingerprint of the forecasts, to check that code versions agree
        "mean_of_means": float(frame["mean"].mean()),
        "mean_of_widths": float((frame["upper"] - frame["lower"]).mean()),
    }


# ---------------------------------------------------------------------------- parent process
def parse_setting(text: str) -> dict[str, int]:
    """``"4x1000/1000"`` -> chains 4, draws 1000, tune 1000."""
    try:
        chains, rest = text.lower().split("x")
        draws, tune = rest.split("/")
        setting = {"chains": int(chains), "draws": int(draws), "tune": int(tune)}
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"setting {text!r} is not CHAINSxDRAWS/TUNE, e.g. 4x1000/1000"
        ) from None
    if min(setting.values()) < 1:
        raise argparse.ArgumentTypeError(f"setting {text!r}: every number must be positive")
    return setting


def run_child(spec: dict, *, source: Path, env: dict[str, str] | None = None) -> dict:
    """Run :func:`child` in a fresh interpreter that imports ``bayesproxy`` from ``source``."""
    env = {**(env or os.environ), "PYTHONPATH": str(source)}
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(spec)],
        capture_output=True,
        text=True,
        env=env,
        cwd=source,
    )
    if proc.returncode != 0:  # keep the other settings' figures; say what went wrong
        sys.stderr.write(proc.stderr[-4000:])
        tail = proc.stderr.strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
        return {"setting": spec, "error": tail[0], "process_seconds": time.perf_counter() - start}
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_seconds"] = time.perf_counter() - start
    return result


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def git_state() -> dict[str, Any]:
    def git(*args: str) -> str:
        proc = subprocess.run(["git", *args], capture_output=True, text=True, cwd=ROOT)
        return proc.stdout.strip()

    dirty = [line[3:] for line in git("status", "--porcelain").splitlines()]
    return {
        "commit": git("rev-parse", "HEAD"),
        "subject": git("log", "-1", "--format=%s"),
        "uncommitted_package_files": sorted(p for p in dirty if p.startswith("bayesproxy/")),
    }


def snapshot(directory: Path, rev: str = "HEAD") -> dict[str, Any]:
    """Extract the committed ``bayesproxy`` package of ``rev`` into ``directory``."""
    state = git_state()
    if rev != "HEAD":
        found = subprocess.run(
            ["git", "log", "-1", "--format=%H%n%s", rev], capture_output=True, text=True, cwd=ROOT
        )
        if found.returncode != 0:
            raise SystemExit(f"bench_fit.py: {rev!r} is not a git revision here")
        commit, subject = found.stdout.strip().split("\n", 1)
        state = {**state, "commit": commit, "subject": subject}
    archive = subprocess.run(
        ["git", "archive", state["commit"], "bayesproxy"],
        capture_output=True,
        check=True,
        cwd=ROOT,
    )
    subprocess.run(["tar", "-x", "-C", str(directory)], input=archive.stdout, check=True)
    state.pop("uncommitted_package_files")  # not part of what is benchmarked
    return {**state, "source": f"committed {rev} (git archive)"}


def verdicts(result: dict) -> dict[str, dict]:
    """Floor verdicts of one setting: a time and whether it meets the floor."""
    cold = result["cold_fit"]
    out = {
        "cold_fit": {
            "seconds": result["import"]["seconds"] + cold["seconds"],
            "converged": cold["converged"],
        },
    }
    if "warm_fit" in result:
        out["warm_fit"] = {
            "seconds": result["warm_fit"]["seconds"],
            "converged": result["warm_fit"]["converged"],
        }
        out["forecast"] = {"seconds": result["forecast"]["seconds_median"], "converged": None}
    for name, entry in out.items():
        entry["floor_seconds"] = FLOORS[name]
        fast = entry["seconds"] <= FLOORS[name]
        entry["met"] = bool(fast and entry["converged"] is not False)
        reasons = ([] if fast else ["slower than the floor"]) + (
            ["the fit fails the convergence gate"] if entry["converged"] is False else []
        )
        entry["why_not"] = " and ".join(reasons)
    return out


def label(setting: dict) -> str:
    return f"{setting['chains']}x{setting['draws']}/{setting['tune']}"


def print_report(results: list[dict], machine: dict) -> None:
    print(
        f"machine: {machine['cpus']} cpus, load average before {machine['load_before']}, "
        f"after {machine['load_after']}"
    )
    done = [res for res in results if "error" not in res]
    for res in results:
        if "error" in res:
            print(f"{res['name']}: FAILED ({res['error']})")
    if not done:
        return
    t = done[0]["table"]
    print(
        f"table: {t['units']} units x {t['tasks']} tasks x {t['replicates']} replicates "
        f"({t['target_observed']} with the target observed)"
    )
    head = (
        f"{'setting':<15}{'phase':<11}{'wall s':>8}{'cpu s':>8}{'load1':>7}  "
        f"{'compile':>8}{'sample':>8}{'other':>7}  {'R-hat':>6}{'ESS b/t':>11}{'div':>5}"
        f"{'steps':>6}  gate"
    )
    print(head)
    print("-" * len(head))
    for res in done:
        name = res["name"]
        imp = res["import"]
        print(
            f"{name:<15}{'import':<11}{imp['seconds']:8.1f}{imp['cpu_seconds']:8.1f}"
            f"{imp['load1_before']:7.2f}"
        )
        for phase in ("cold_fit", "warm_fit"):
            if phase not in res:
                continue
            f = res[phase]
            print(
                f"{name:<15}{phase.replace('_', ' '):<11}{f['seconds']:8.1f}"
                f"{f['cpu_seconds']:8.1f}{f['load1_before']:7.2f}  {f['compile_seconds']:8.1f}"
                f"{f['sample_seconds']:8.1f}{f['other_seconds']:7.1f}  {f['rhat_max']:6.3f}"
                f"{f['ess_bulk_min']:6.0f}/{f['ess_tail_min']:<4.0f}{f['divergences']:5d}"
                f"{f['mean_leapfrog_steps']:6.1f}  "
                + ("pass" if f["converged"] else f"FAIL {','.join(f['failing'][:3])}")
            )
        if "forecast" in res:
            fo = res["forecast"]
            print(
                f"{name:<15}{'forecast':<11}{fo['seconds_median']:8.2f}"
                f"{statistics.median(r['cpu_seconds'] for r in fo['runs']):8.2f}"
                f"{fo['runs'][0]['load1_before']:7.2f}  {fo['units']} units, median of "
                f"{len(fo['runs'])} (first {fo['seconds_first']:.2f} s, "
                f"max {fo['seconds_max']:.2f} s)"
            )
            steps = ", ".join(f"{k} {v:.2f}" for k, v in fo["steps_median_seconds"].items())
            print(f"{'':<26}forecast steps (median s): {steps}")
    print()
    print("floors (cold = import + first fit; a fit failing the gate does not count):")
    for res in done:
        for phase, v in res["verdicts"].items():
            print(
                f"  {res['name']:<15}{phase:<9} {v['seconds']:7.2f} s  <= {v['floor_seconds']:g} s"
                f"  {'met' if v['met'] else 'NOT met: ' + v['why_not']}"
            )


def child_spec(setting: dict, args: argparse.Namespace, *, cold_only: bool = False) -> dict:
    """What a child process runs: one setting on the reference table of ``--seed``."""
    return {
        **setting,
        "seed": args.seed,
        "forecast_units": args.forecast_units,
        "forecast_repeat": args.forecast_repeat,
        "cold_only": cold_only,
    }


def time_settings(
    source: Path,
    code: dict,
    settings: list[dict],
    args: argparse.Namespace,
    results: list[dict],
    *,
    prefix: str = "",
) -> dict:
    """Time every setting on the code in ``source`` (a new process each), into ``results``.

    Returns the warm-up process's figures: the code was just extracted, so numba has cached
    none of the package's compiled kernels for it yet. A first process compiles them once,
    as the first use after installation does; the timed processes then load them from the
    disk cache.
    """
    warm_up = run_child({"warm_up": True}, source=source)
    for setting in settings:
        res = run_child(child_spec(setting, args), source=source)
        res["name"], res["code"] = prefix + label(setting), code
        results.append(res)
    return warm_up


def forecast_only(args: argparse.Namespace, setting: dict) -> None:
    """Fit once, then time the forecast of each code version on that fit."""
    started = datetime.now(UTC).isoformat(timespec="seconds")
    load_before = [round(x, 2) for x in os.getloadavg()]
    spec = child_spec(setting, args, cold_only=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench_fit_src_") as tmp:
        tmp = Path(tmp)
        code_versions = []  # (name, source directory, provenance), the baseline first
        if args.baseline_rev:
            (tmp / "baseline").mkdir()
            code = snapshot(tmp / "baseline", args.baseline_rev)
            code_versions.append(("baseline", tmp / "baseline", code))
        if args.working_tree:
            code_versions.append(("current", ROOT, {**git_state(), "source": "working tree"}))
        else:
            (tmp / "current").mkdir()
            code_versions.append(("current", tmp / "current", snapshot(tmp / "current")))
        fit_path = tmp / "fit.nc"
        fit = run_child({**spec, "save_fit": str(fit_path)}, source=code_versions[-1][1])
        if "error" in fit:
            raise SystemExit(f"bench_fit.py: the fit failed: {fit['error']}")
        # code versions alternate, round after round, each in a new process: the machine's
        # drift over minutes then falls on both alike
        rounds: dict[str, list[dict]] = {name: [] for name, _, _ in code_versions}
        for round_ in range(args.rounds):
            # ABBA: each version runs first in half the rounds
            order = code_versions if round_ % 2 == 0 else code_versions[::-1]
            for name, source, _ in order:
                rounds[name].append(run_child({**spec, "load_fit": str(fit_path)}, source=source))
        for name, _, code in code_versions:
            res = pool_rounds(rounds[name])
            res["name"], res["code"] = name, code
            results.append(res)

    machine = machine_info(load_before)
    cold = fit["cold_fit"]
    print(
        f"machine: {machine['cpus']} cpus, load average before {machine['load_before']}, "
        f"after {machine['load_after']}"
    )
    print(
        f"fit {label(setting)} once (current code): {cold['seconds']:.1f} s, R-hat max "
        f"{cold['rhat_max']:.3f} (only its draws are used)"
    )
    for res in results:
        code = res["code"]
        print(f"{res['name']:<9} code: {code['source']}, {code['commit'][:10]} ({code['subject']})")
        if "error" in res:
            print(f"{'':<9} FAILED ({res['error']})")
            continue
        fo = res["forecast"]
        met = fo["seconds_median"] <= FLOORS["forecast"]
        print(
            f"{'':<9} forecast {fo['units']} units: median {fo['seconds_median']:.2f} s "
            f"(min {fo['seconds_min']:.2f}, max {fo['seconds_max']:.2f}, first "
            f"{fo['seconds_first']:.2f}; {len(fo['runs'])} calls), load1 "
            f"{fo['runs'][0]['load1_before']:.2f}; floor {FLOORS['forecast']:g} s "
            + ("met" if met else "NOT met")
        )
        if len(fo["round_medians"]) > 1:
            medians = ", ".join(f"{m:.2f}" for m in fo["round_medians"])
            print(f"{'':<9} medians of the {len(fo['round_medians'])} rounds (s): {medians}")
        steps = ", ".join(f"{k} {v:.2f}" for k, v in fo["steps_median_seconds"].items())
        print(f"{'':<9} steps (median s): {steps}")
        print(
            f"{'':<9} mean of the forecast means {fo['mean_of_means']:.6f}, "
            f"mean interval width {fo['mean_of_widths']:.6f}"
        )
    if str(args.output) != "-":
        baseline = {
            "benchmark": "benchmarks/bench_fit.py --forecast-only",
            "command": "python benchmarks/bench_fit.py " + " ".join(sys.argv[1:]),
            "started": started,
            "reference_table": {**REFERENCE, "random_seed": args.seed},
            "floors_seconds": {"forecast": FLOORS["forecast"]},
            "machine": machine,
            "versions": versions(),
            "fit": fit,
            "results": results,
        }
        args.output.write_text(json.dumps(baseline, indent=2) + "\n")
        print(f"written: {args.output}")


def pool_rounds(rounds: list[dict]) -> dict:
    """One code version's forecast figures over its rounds (processes): calls pooled."""
    failed = [r for r in rounds if "error" in r]
    if failed:
        return failed[0]
    forecasts = [r["forecast"] for r in rounds]
    runs = [run for fo in forecasts for run in fo["runs"]]
    seconds = [run["seconds"] for run in runs]
    steps = forecasts[0]["steps_median_seconds"]
    pooled = {
        **forecasts[0],
        "runs": runs,
        "seconds_first": forecasts[0]["seconds_first"],
        "seconds_median": statistics.median(seconds),
        "seconds_min": min(seconds),
        "seconds_max": max(seconds),
        "steps_median_seconds": {
            k: statistics.median(run[f"{k}_seconds"] for run in runs) for k in steps
        },
        "round_medians": [fo["seconds_median"] for fo in forecasts],
    }
    return {**rounds[0], "forecast": pooled, "rounds": len(rounds)}


def machine_info(load_before: list[float]) -> dict:
    """The machine's description and its load before and after the runs."""
    return {
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "load_before": load_before,
        "load_after": [round(x, 2) for x in os.getloadavg()],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--settings",
        default="4x2000/1000,4x1000/1000",
        help="comma-separated CHAINSxDRAWS/TUNE (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the reference table")
    parser.add_argument("--forecast-units", type=int, default=10_000)
    parser.add_argument("--forecast-repeat", type=int, default=3)
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="--forecast-only: processes per code version, alternating between versions; "
        "the calls of all rounds are pooled (default: %(default)s)",
    )
    parser.add_argument(
        "--empty-cache",
        action="store_true",
        help="also time a cold fit with empty PyTensor and numba caches (first setting)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="where the figures are written ('-' for nowhere; default "
        "benchmarks/baseline_fit.json, or baseline_forecast.json with --forecast-only)",
    )
    parser.add_argument(
        "--working-tree",
        action="store_true",
        help="benchmark the working tree as it is, uncommitted edits included (default: "
        "the committed HEAD, extracted once, so edits made during the run cannot mix in)",
    )
    parser.add_argument(
        "--forecast-only",
        action="store_true",
        help="fit once (first setting) and time only the forecast; figures go to "
        "benchmarks/baseline_forecast.json by default",
    )
    parser.add_argument(
        "--baseline-rev",
        help="also time the bayesproxy of this git revision, first, in the same run (before "
        "/ after side by side): on the same saved fit with --forecast-only, else every "
        "setting's phases, its rows marked 'b:'",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    if args.forecast_units < 1 or args.forecast_repeat < 1 or args.rounds < 1:
        parser.error("--forecast-units, --forecast-repeat and --rounds must be positive")
    try:
        settings = [parse_setting(s) for s in args.settings.split(",") if s.strip()]
    except argparse.ArgumentTypeError as exc:
        parser.error(str(exc))
    if not settings:
        parser.error("--settings names no setting")
    if args.output is None:
        name = "baseline_forecast.json" if args.forecast_only else "baseline_fit.json"
        args.output = ROOT / "benchmarks" / name
    if args.forecast_only:
        forecast_only(args, settings[0])
        return

    started = datetime.now(UTC).isoformat(timespec="seconds")
    load_before = [round(x, 2) for x in os.getloadavg()]
    results = []
    baseline_code = baseline_warm_up = None
    with tempfile.TemporaryDirectory(prefix="bench_fit_src_") as src:
        if args.baseline_rev:  # the baseline's phases first
            (Path(src) / "baseline").mkdir()
            baseline_code = snapshot(Path(src) / "baseline", args.baseline_rev)
            baseline_warm_up = time_settings(
                Path(src) / "baseline", baseline_code, settings, args, results, prefix="b:"
            )
        if args.working_tree:
            source, code = ROOT, {**git_state(), "source": "working tree"}
        else:
            (Path(src) / "current").mkdir()
            source, code = Path(src) / "current", snapshot(Path(src) / "current")
        warm_up = time_settings(source, code, settings, args, results)
        if args.empty_cache:
            with tempfile.TemporaryDirectory(prefix="bench_fit_pytensor_") as tmp:
                env = {
                    **os.environ,
                    "PYTENSOR_FLAGS": f"base_compiledir={tmp}",
                    "NUMBA_CACHE_DIR": str(Path(tmp) / "numba"),
                }
                spec = child_spec(settings[0], args, cold_only=True)
                res = run_child(spec, source=source, env=env)
            res["name"] = label(settings[0]) + "*"
            res["empty_compile_cache"] = True
            results.append(res)
    for res in results:
        if "error" not in res:
            res["verdicts"] = verdicts(res)

    machine = machine_info(load_before)
    print_report(results, machine)
    print(f"code: {code['source']}, {code['commit'][:10]} ({code['subject']})")
    if baseline_code is not None:
        print(
            f"baseline (rows b:): {baseline_code['source']}, {baseline_code['commit'][:10]} "
            f"({baseline_code['subject']})"
        )
    if "warm_up" in warm_up:
        print(
            f"first use after installation (a tiny fit and forecast, compiling the package's "
            f"kernels into numba's disk cache): {warm_up['warm_up']['seconds']:.1f} s"
        )
    if args.empty_cache:
        print("  (* = empty PyTensor and numba caches: the first fit after installation)")
    if str(args.output) != "-":
        baseline = {
            "benchmark": "benchmarks/bench_fit.py",
            "command": "python benchmarks/bench_fit.py " + " ".join(sys.argv[1:]),
            "started": started,
            "reference_table": {**REFERENCE, "random_seed": args.seed},
            "floors_seconds": FLOORS,
            "machine": machine,
            "versions": versions(),
            "code": code,
            "baseline_code": baseline_code,
            "baseline_warm_up": baseline_warm_up,
            "warm_up": warm_up,
            "results": results,
        }
        args.output.write_text(json.dumps(baseline, indent=2) + "\n")
        print(f"written: {args.output}")


if __name__ == "__main__":
    main()
