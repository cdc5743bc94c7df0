"""python -m dglsim.sim SPEC.toml [--json] [--trace-out FILE] [--engine auto|compiled|python]

Runs a timing-only simulation (no torch) and prints its metrics; --json prints them as JSON.
The run keeps no trace in memory: its summary is computed as its rows stream by
(`dglsim.sim.summary`), and --trace-out writes them as they come, chunk by chunk: CSV for a
.csv name, Parquet for .parquet, Chrome-trace JSON (open in Perfetto) for .json, the row text
form otherwise. --engine picks the compiled kernel (the default when numba imports) or the
Python reference engine; both give the same trace.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from dglsim.errors import InvalidArgument, warnings_on_one_line
from dglsim.limits import ENV_VAR
from dglsim.sim.simulate import ENGINES, simulate
from dglsim.sim.spec import load_spec
from dglsim.sim.summary import TraceSummary
from dglsim.sim.trace_io import trace_writer


def _table(metrics: dict, spec, wall: float) -> str:
    lines = [f"mode {spec.mode}, K={spec.k}, {spec.steps} updates per worker, seed {spec.seed}: "
             f"makespan {metrics['makespan']:.6g}, {metrics['events']} trace rows, simulated in {wall:.3f} s",
             f"{'worker':>6} {'updates':>8} {'thru/s':>10} {'util':>6} {'stale mean':>10} {'stale max':>9} {'age mean':>10} {'reuse mean':>10} {'occ mean':>8} {'evict':>6} {'bytes':>12}"]
    for w in metrics["workers"]:
        st, age, reuse = w["staleness"], w["age"], w["reuse"]
        lines.append(f"{w['worker']:>6} {w['updates']:>8} {w['throughput']:>10.4g} {w['utilization']:>6.3f} {st.get('mean', 0):>10.3f} "
                     f"{st.get('max', 0):>9.0f} {age.get('mean', 0):>10.4g} {reuse.get('mean', 0):>10.3f} {w['occupancy_mean']:>8.3f} {w['evictions']:>6} {w['bytes_sent']:>12}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dglsim.sim", description="Run a timing-only pipeline simulation.")
    parser.add_argument("spec", type=Path, help="a TOML pipeline spec (see dglsim.sim.spec, studies/sim/)")
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")
    parser.add_argument("--trace-out", type=Path, help="write the trace (.csv, .parquet, .json Chrome trace, or text)")
    parser.add_argument("--engine", choices=ENGINES, default="auto", help="compiled kernel or Python engine (default: the kernel when numba imports)")
    parser.add_argument("--allow-large", action="store_true", help="lift the declared limits on work (dglsim.limits)")
    args = parser.parse_args(argv)
    if args.allow_large:
        os.environ[ENV_VAR] = "1"
    warnings_on_one_line()
    try:
        spec = load_spec(args.spec)
        summary = TraceSummary(spec.k)
        writer = trace_writer(args.trace_out) if args.trace_out else None
    except InvalidArgument as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    def on_chunk(rows) -> None:
        summary.add(rows)
        if writer is not None:
            writer.write(rows)

    try:
        start = time.perf_counter()
        simulate(spec, engine=args.engine, keep_trace=False, on_chunk=on_chunk)
        wall = time.perf_counter() - start
    except InvalidArgument as exc:
        if writer is not None:
            writer.abort()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    if writer is not None:
        writer.close()
    metrics = summary.result()
    print(json.dumps(metrics | {"spec": str(args.spec), "wall_s": wall, "engine": args.engine}, indent=2) if args.json else _table(metrics, spec, wall))
    return 0
