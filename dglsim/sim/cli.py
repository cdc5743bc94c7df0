"""python -m dglsim.sim SPEC.toml [--json] [--trace-out FILE.csv|FILE.json]

Runs a timing-only simulation (no torch) and prints its metrics; --json prints them as JSON.
--trace-out writes the trace: CSV for a .csv name, Chrome-trace JSON (open in Perfetto) for
.json, the row text form otherwise.
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
from dglsim.sim.metrics import summarize_trace
from dglsim.sim.simulate import simulate
from dglsim.sim.spec import load_spec


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
    parser.add_argument("--trace-out", type=Path, help="write the trace (.csv, .json Chrome trace, or text)")
    parser.add_argument("--allow-large", action="store_true", help="lift the declared limits on work (dglsim.limits)")
    args = parser.parse_args(argv)
    if args.allow_large:
        os.environ[ENV_VAR] = "1"
    warnings_on_one_line()
    try:
        spec = load_spec(args.spec)
        start = time.perf_counter()
        result = simulate(spec)
        wall = time.perf_counter() - start
    except InvalidArgument as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    metrics = summarize_trace(result.trace, spec.k)
    if args.trace_out:
        suffix = args.trace_out.suffix
        if suffix == ".csv":
            result.trace.to_csv(args.trace_out)
        elif suffix == ".json":
            result.trace.to_chrome(args.trace_out)
        else:
            args.trace_out.write_text(result.trace.text())
    print(json.dumps(metrics | {"spec": str(args.spec), "wall_s": wall}, indent=2) if args.json else _table(metrics, spec, wall))
    return 0
