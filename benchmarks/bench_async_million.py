"""Time and peak memory to simulate 1,000,000 module updates of a K=8 async pipeline on the
Python engine (the compiled kernel: bench_kernel.py), trace and metrics included (median of
--repeats runs, each in a fresh process).

    python benchmarks/bench_async_million.py [--updates 1000000] [--repeats 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from timing import finish_report  # noqa: E402

CHILD = """
import json, resource, sys, time
from dglsim.sim import simulate, spec_from_dict, summarize_trace
k, steps = 8, int(sys.argv[1]) // 8
spec = spec_from_dict({"mode": "async", "workers": k, "steps": steps, "seed": 0, "buffer": 10, "policy": "least_used",
    "compute": {"kind": "lognormal", "mean": 0.01, "cv": 0.3}, "slowdown": [1, 1, 1.5, 1, 1, 1, 1, 1],
    "latency": {"kind": "exponential", "mean": 1e-4}, "payload_bytes": 1 << 20, "bandwidth": 1.25e9})
start = time.perf_counter()
result = simulate(spec, engine="python")
simulated = time.perf_counter() - start
metrics = summarize_trace(result.trace, k)
total = time.perf_counter() - start
print(json.dumps({"updates": sum(result.updates), "rows": len(result.trace), "simulate_s": simulated, "total_s": total,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--updates", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    runs = [json.loads(subprocess.run([sys.executable, "-c", CHILD, str(args.updates)], capture_output=True, text=True, check=True).stdout)
            for _ in range(args.repeats)]
    summary = {key: statistics.median(r[key] for r in runs) for key in ("simulate_s", "total_s", "peak_rss_mb")}
    summary |= {"updates": runs[0]["updates"], "rows": runs[0]["rows"]}
    print(f"{summary['updates']:,} updates (K=8 async), {summary['rows']:,} trace rows: simulate {summary['simulate_s']:.2f} s, "
          f"with metrics {summary['total_s']:.2f} s, {summary['updates'] / summary['simulate_s'] / 1e6:.2f} M updates/s, peak RSS {summary['peak_rss_mb']:.0f} MB")
    finish_report({"benchmark": "async_million", "runs": runs, "median": summary}, args.json)


if __name__ == "__main__":
    main()
