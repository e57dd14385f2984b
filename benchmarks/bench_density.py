"""Time per call of the hand-written log density and gradient, against another revision.

The sampler spends about three quarters of its time in this one function
(``bayesproxy.model.density``): on the reference table of ``bench_fit.py`` (150 units x 39
proxies x 3 replicates), a default fit evaluates it ~370,000 times. Whole fits vary 20-30%
with this shared machine's load; this script times the function alone, alternating the
current version with the ``density.py`` of ``--baseline-rev`` in one process, so that both
see the same load.

Only ``bayesproxy/model/density.py`` is taken from the baseline revision (it imports the
rest of the package as it is now), so the comparison holds while the model's other modules
keep the helpers it uses. Both versions are first checked to give the same log density
(to 1e-12, relative) and gradient (to 1e-9) at the timed points.

Usage::

    python benchmarks/bench_density.py [--baseline-rev REV] [--rounds 16] [--calls 3000]
        [--output benchmarks/baseline_density.json]
"""

from __future__ import annotations

import argparse
import importlib.util
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
from types import ModuleType

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_fit import REFERENCE  # noqa: E402


def _module_at(rev: str, directory: Path) -> ModuleType:
    """``bayesproxy/model/density.py`` of ``rev``, imported as a module of its own."""
    source = subprocess.run(
        ["git", "show", f"{rev}:bayesproxy/model/density.py"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = directory / "density_baseline.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("density_baseline", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["density_baseline"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _per_call_us(kernel, x: np.ndarray, blob: np.ndarray, calls: int) -> float:
    grad = np.empty_like(x)
    start = time.perf_counter()
    for _ in range(calls):
        kernel(x, blob, grad)
    return (time.perf_counter() - start) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-rev", default="dacd050")
    parser.add_argument("--rounds", type=int, default=16)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks/baseline_density.json")
    args = parser.parse_args()

    from bayesproxy.datasets import simulate
    from bayesproxy.model import density
    from bayesproxy.model.build import build_model
    from bayesproxy.model.design import build_design
    from bayesproxy.model.priors import resolve_priors

    table = simulate(**REFERENCE, random_seed=1).table
    design = build_design(table, target=table.target)
    priors = resolve_priors()
    model = build_model(design, priors=priors, n_factors=1)
    with tempfile.TemporaryDirectory() as tmp:
        baseline = _module_at(args.baseline_rev, Path(tmp))
        versions = {
            "baseline": (baseline._density, baseline.pack(design, model, priors=priors).blob),
            "current": (density._density, density.pack(design, model, priors=priors).blob),
        }
        rng = np.random.default_rng(0)
        n_dim = density.pack(design, model, priors=priors).n_dim
        points = [rng.normal(scale=scale, size=n_dim) for scale in (0.1, 0.3, 1.0)]
        for x in points:  # the same function, else the timing means nothing
            grads = {}
            values = {}
            for name, (kernel, blob) in versions.items():
                grads[name] = np.empty(n_dim)
                values[name] = kernel(x, blob, grads[name])
            np.testing.assert_allclose(values["current"], values["baseline"], rtol=1e-12)
            np.testing.assert_allclose(grads["current"], grads["baseline"], rtol=1e-9, atol=1e-9)
        x = points[1]
        times: dict[str, list[float]] = {name: [] for name in versions}
        load = [os.getloadavg()[0]]
        for round_ in range(args.rounds):
            order = list(versions) if round_ % 2 == 0 else list(versions)[::-1]
            for name in order:
                kernel, blob = versions[name]
                times[name].append(_per_call_us(kernel, x, blob, args.calls))
        load.append(os.getloadavg()[0])

    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    result = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus",
        "load1": load,
        "table": f"{design.n_units} units x {len(design.proxies)} proxies",
        "n_dim": n_dim,
        "rounds": args.rounds,
        "calls_per_round": args.calls,
        "versions": {"baseline": args.baseline_rev, "current": f"{head} (working tree)"},
        "microseconds_per_call": {
            name: {"min": min(v), "median": statistics.median(v), "all": v}
            for name, v in times.items()
        },
    }
    for name, v in times.items():
        print(
            f"{name:9s} {result['versions'][name]:>22s}: min {min(v):5.1f} us, "
            f"median {statistics.median(v):5.1f} us per call ({args.rounds} rounds)"
        )
    ratio = statistics.median(times["current"]) / statistics.median(times["baseline"])
    print(f"current / baseline (medians): {ratio:.2f}; load {load[0]:.2f} -> {load[1]:.2f}")
    args.output.write_text(json.dumps(result, indent=1) + "\n")
    print(f"written: {args.output}")


if __name__ == "__main__":
    main()
