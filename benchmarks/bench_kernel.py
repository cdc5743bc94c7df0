"""The compiled timing kernel (dglsim.sim.kernel) against SimPy and against the Python engine,
side by side in one process; then large runs, each in a fresh process for its peak memory.

1. kernel vs SimPy on the same K = 4 tandem (bench_engine.py's model: FIFO stages, service
   times drawn up front, the kernel reading them as replayed delays; the makespans agree):
   SimPy time / kernel time (goal >= 30), the kernel keeping no trace (SimPy makes none) and
   keeping its full trace.
2. kernel vs Python engine on the same async spec, identical traces (checked first): Python
   time / kernel time (goal >= 20), with the trace kept and with streaming summaries only.
3. 10^7 updates on 4,096 devices, async with buffers, streaming summaries, no trace kept
   (goal <= 10 s, <= 2 GB peak RSS): (a) K = 4 modules x N = 1,024 replicas, 10^7 replica
   updates (2,442 module updates per module, each the slowest of 1,024 draws, then a ring
   all-reduce); (b) K = 4,096 modules of one replica, 10^7 module updates.
4. memory per 10^6 updates with the full trace kept (goal <= 150 MB): the kernel's
   compressed columnar trace (bytes held, and the resident memory it adds), against the Python
   engine's tuple trace (the resident memory it adds).

    python benchmarks/bench_kernel.py [--rounds 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_engine import simpy_tandem  # noqa: E402
from timing import finish_report, paired_ratio  # noqa: E402

from dglsim.sim import simulate, spec_from_dict  # noqa: E402
from dglsim.sim.summary import TraceSummary  # noqa: E402

STRAGGLING = {"kind": "straggler", "base": {"kind": "lognormal", "mean": 0.01, "cv": 0.2}, "q": 0.02, "factor": 4}
LARGE = {
    "replicas": {"mode": "async", "workers": 4, "steps": 2442, "buffer": 5, "replicas": 1024, "compute": STRAGGLING, "latency": 5e-6,
                 "bandwidth": 12.5e9, "payload_bytes": 1 << 20, "gradient_bytes": 10**7, "allreduce": {"algorithm": "ring", "bandwidth": 12.5e9, "latency": 5e-6}},
    "modules": {"mode": "async", "workers": 4096, "steps": 2442, "buffer": 5, "compute": STRAGGLING, "latency": 5e-6,
                "bandwidth": 12.5e9, "payload_bytes": 1 << 20},
}
MILLION = {"mode": "async", "workers": 4, "steps": 250_000, "buffer": 5, "seed": 0, "compute": {"kind": "gamma", "mean": 0.01, "cv": 0.5},
           "latency": {"kind": "exponential", "mean": 1e-3}, "payload_bytes": 1 << 20, "bandwidth": 1.25e9}

CHILD = """
import json, resource, sys, time
from dglsim.sim import simulate, spec_from_dict
from dglsim.sim.summary import TraceSummary

def rss_mb():  # resident memory now (peak RSS cannot show what a result holds after the imports' peak)
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024

doc, engine, keep = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3] == "keep"
spec = spec_from_dict(doc)
simulate(spec_from_dict(doc | {"steps": 2}), engine=engine)  # load the compiled code before the clock starts
base = rss_mb()
start = time.perf_counter()
summary = TraceSummary(spec.k)
if engine == "python":
    result = simulate(spec, engine="python")
    for chunk in result.trace.chunks():
        summary.add(chunk)
else:
    result = simulate(spec, engine="compiled", keep_trace=keep, on_chunk=summary.add)
metrics = summary.result()
wall = time.perf_counter() - start
held = getattr(result.trace, "nbytes", None)
print(json.dumps({"wall_s": wall, "rows": metrics["events"], "module_updates": sum(result.updates), "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "rss_held_mb": rss_mb() - base, "trace_held_mb": held / 1e6 if held is not None else None}))
"""


def _child(doc: dict, engine: str, keep: bool) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, json.dumps(doc), engine, "keep" if keep else "drop"], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results: dict = {}

    k, n = 4, args.items
    rng = np.random.default_rng(0)
    services = [rng.exponential(1.0, n).tolist() for _ in range(k)]
    tandem = spec_from_dict({"mode": "sync", "workers": k, "steps": n, "compute": [{"kind": "replay", "values": s, "cycle": False} for s in services]})
    assert simulate(tandem).makespan == simpy_tandem(services)  # the same model
    for keep in (False, True):
        r = paired_ratio(lambda: simpy_tandem(services), lambda: simulate(tandem, keep_trace=keep), rounds=args.rounds, warmup=1)
        results[f"kernel_vs_simpy_{'trace' if keep else 'no_trace'}"] = r
        print(f"kernel vs SimPy, K=4 tandem of {n:,} items ({'trace kept' if keep else 'no trace'}): {r['ratio_median']:.1f}x (IQR {r['ratio_q1']:.1f}-{r['ratio_q3']:.1f}); "
              f"kernel {k * n / r['denominator_s_median'] / 1e6:.2f} M services/s, SimPy {k * n / r['numerator_s_median'] / 1e6:.3f} M/s")

    spec = spec_from_dict(MILLION | {"steps": 50_000})
    assert simulate(spec, engine="compiled").trace == simulate(spec, engine="python").trace  # identical traces, checked before timing

    def summarized(engine: str):
        summary = TraceSummary(spec.k)
        simulate(spec, engine=engine, keep_trace=False, on_chunk=summary.add)
        return summary.result()

    for name, kernel in (("trace", lambda: simulate(spec, engine="compiled").trace.nbytes), ("summary", lambda: summarized("compiled"))):
        r = paired_ratio(lambda: simulate(spec, engine="python"), kernel, rounds=args.rounds, warmup=1)
        results[f"kernel_vs_python_{name}"] = r
        print(f"kernel vs Python engine, K=4 async, {4 * 50_000:,} updates ({'both keep the full trace' if name == 'trace' else 'kernel with streaming summaries, no trace'}): "
              f"{r['ratio_median']:.1f}x (IQR {r['ratio_q1']:.1f}-{r['ratio_q3']:.1f}); kernel {4 * 50_000 / r['denominator_s_median'] / 1e6:.2f} M updates/s, "
              f"Python {4 * 50_000 / r['numerator_s_median'] / 1e6:.3f} M/s")

    for name, doc in LARGE.items():
        run = _child(doc, "compiled", keep=False)
        devices = doc["workers"] * doc.get("replicas", 1)
        replica_updates = run["module_updates"] * doc.get("replicas", 1)
        results[f"ten_million_{name}"] = run | {"devices": devices, "replica_updates": replica_updates}
        print(f"10^7 updates, {doc['workers']} modules x {doc.get('replicas', 1)} replicas = {devices:,} devices: {run['module_updates']:,} module updates, "
              f"{replica_updates:,} replica updates, {run['rows']:,} rows summarized: {run['wall_s']:.2f} s, peak RSS {run['peak_rss_mb']:.0f} MB")

    million = {"kernel": _child(MILLION, "compiled", keep=True), "python": _child(MILLION, "python", keep=True)}
    results["memory_per_million"] = million
    print(f"10^6 updates with the full trace kept: kernel holds {million['kernel']['trace_held_mb']:.0f} MB of trace, resident memory +{million['kernel']['rss_held_mb']:.0f} MB "
          f"({million['kernel']['wall_s']:.2f} s); Python engine resident memory +{million['python']['rss_held_mb']:.0f} MB ({million['python']['wall_s']:.2f} s)")
    finish_report({"benchmark": "kernel", "results": results}, args.json)


if __name__ == "__main__":
    main()
