"""Time and peak memory of reading the real benchmark tables into a BenchmarkTable.

Usage: python benchmarks/bench_read.py DATA_DIR [--repeat N]

DATA_DIR holds obsscaling_base.csv.gz and olmo_ladder_long.csv.gz. Each file is read in a
fresh subprocess (cold imports excluded, so the figure is the reader itself); the peak is
the process's maximum resident set size minus its size after the imports.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
import bayesproxy.io, pandas, xarray  # imports outside the timing
from bayesproxy.io import read_table
path, kwargs = sys.argv[1], json.loads(sys.argv[2])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
table = read_table(path, **kwargs)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "rss_before_mib": before / 1024,
                  "rss_peak_mib": peak / 1024, "table": repr(table)}))
"""

FILES = {
    "obsscaling_base.csv.gz": {"drop_constant": True},
    "olmo_ladder_long.csv.gz": {},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    for name, kwargs in FILES.items():
        path = args.data_dir / name
        if not path.is_file():
            print(f"{name}: not found under {args.data_dir}, skipped")
            continue
        runs = []
        for _ in range(args.repeat):
            out = subprocess.run(
                [sys.executable, "-c", CHILD, str(path), json.dumps(kwargs)],
                check=True,
                capture_output=True,
                text=True,
            )
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        best = min(r["seconds"] for r in runs)
        median = sorted(r["seconds"] for r in runs)[len(runs) // 2]
        peak = max(r["rss_peak_mib"] - r["rss_before_mib"] for r in runs)
        print(f"{name} {kwargs or ''}")
        print(f"  {runs[0]['table']}")
        print(f"  read time: best {best:.2f} s, median {median:.2f} s over {len(runs)} runs")
        print(
            f"  peak memory above imports: {peak:.0f} MiB (process peak "
            f"{max(r['rss_peak_mib'] for r in runs):.0f} MiB)"
        )


if __name__ == "__main__":
    main()
