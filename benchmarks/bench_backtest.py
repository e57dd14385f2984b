"""Wall time of one backtest on the ObsScaling table: serial vs a 2-worker process pool.

Both runs use the same table, methods, splits and seeds, back to back in one process, so
they see the same machine load; the script also checks that both give the same scores.

Usage::

    python benchmarks/bench_backtest.py DATA_DIR [--methods a,b] [--target word_unscrambling]
        [--splits compute:8.4e22,family] [--quick] [--workers 2]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

from backtest_real_data import STANDARD, method_specs, obsscaling_table

from bayesproxy.backtest import backtest
from bayesproxy.methods.base import available_methods


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--methods", default=",".join(available_methods()))
    parser.add_argument("--target", default="word_unscrambling")
    parser.add_argument("--splits", default="compute:8.4e22,family")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)

    table = obsscaling_table(args.data_dir)
    table = table.select(tasks=[*STANDARD, args.target]).with_target(
        args.target, min_target_units=0
    )
    specs = method_specs(
        [m for m in args.methods.split(",") if m], quick=args.quick, loss_task=None
    )
    splits = [s for s in args.splits.split(",") if s]
    kwargs = dict(target=args.target, methods=specs, splits=splits, n_samples=400, progress=False)

    # the machine may be shared: record the load around each phase with its time
    load_serial = os.getloadavg()[0]
    start = time.perf_counter()
    serial = backtest(table, executor="serial", **kwargs)
    t_serial = time.perf_counter() - start
    load_parallel = os.getloadavg()[0]

    start = time.perf_counter()
    with ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        parallel = backtest(table, executor=pool, **kwargs)
    t_parallel = time.perf_counter() - start

    n_jobs = serial.results.groupby(["method", "split", "fold"]).ngroups
    keep = serial.results["metric"] != "fit_seconds"
    same = np.allclose(
        serial.results.loc[keep, "value"], parallel.results.loc[keep, "value"], equal_nan=True
    )
    print(f"table: {table.n_units} units x {table.n_tasks} tasks; target {args.target}")
    print(f"methods: {[s.label for s in specs]}; splits: {splits}; jobs: {n_jobs}")
    print(f"cpus visible: {os.cpu_count()}; load average before: {os.getloadavg()}")
    print(f"serial:            {t_serial:8.1f} s  (1-min load before: {load_serial:.1f})")
    print(
        f"{args.workers} workers (spawn): {t_parallel:8.1f} s  "
        f"(speed-up {t_serial / t_parallel:.2f}x; 1-min load before: {load_parallel:.1f})"
    )
    print(f"identical scores: {same}; failed jobs: {len(serial.errors)}")


if __name__ == "__main__":
    main()
