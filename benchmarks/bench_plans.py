"""Planned schedules: the plan executor against the pipeline simulator on the DGL plan, and each
method's simulated makespan per mini-batch against its closed form on constant durations.

1. Engine cost: synchronous DGL with unbounded queues on the pipeline simulator's Python engine
   (dglsim.sim, the engine training runs on) and the DGL plan on the plan executor
   (dglsim.schedule), the same cluster (K modules, one slowed, link latency and bandwidth).
   Checked first: every update starts at the same instant on both. Reported: plan executor time
   / pipeline time (goal <= 1.2) for runs of a wired plan (its dependencies as numbers, worked
   out once per plan and shared by every run of it: a sweep over seeds or clusters), the same
   ratio for a plan's first run (its wiring included), and the plan's time to build and check.
2. Traces: sync DGL with queues of 5 on the same cluster, run as the DGL plan with back-pressure,
   the spec's own compute streams and the executor's trace rows (dglsim.sim.as_plan), against the
   pipeline simulator: byte-identical traces (checked), and the time ratio.
3. Makespans on K equal devices, T seconds per DGL update (forward f = T/3, backward 2f), no
   link cost: simulated seconds per mini-batch over S mini-batches against the closed form:
   GPipe and 1F1B (m + K - 1) 3f / m per mini-batch, bubble (K - 1) / (m + K - 1); DGL, DDG and
   DNI (S + K - 1) T in all; features replay 4f per extra step; greedy K S T + (K - 1) f.

    python benchmarks/bench_plans.py [--steps 20000] [--rounds 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from timing import finish_report, paired_ratio  # noqa: E402

from dglsim.schedule import ActionCosts, build_plan, run_plan  # noqa: E402
from dglsim.sim import simulate, spec_from_dict  # noqa: E402
from dglsim.sim.as_plan import sync_plan  # noqa: E402
from dglsim.sim.streams import worker_streams  # noqa: E402
from dglsim.sim.trace import Trace  # noqa: E402

K, T, NBYTES = 4, 0.01, 1 << 20
SECONDS = (0.010, 0.012, 0.009, 0.011)
SLOWDOWN = (1.0, 2.0, 1.0, 1.0)


def engine_comparison(steps: int, rounds: int) -> dict:
    spec = spec_from_dict({"mode": "sync", "workers": K, "steps": steps, "compute": list(SECONDS), "slowdown": list(SLOWDOWN),
                           "latency": 1e-4, "bandwidth": 1e9, "payload_bytes": NBYTES})
    costs = ActionCosts(SECONDS, slowdown=SLOWDOWN, activation_bytes=(NBYTES,) * (K - 1), latency=1e-4, bandwidth=1e9)
    start = time.perf_counter()
    plan = build_plan("dgl", K, steps, 1)
    build_s = time.perf_counter() - start
    start = time.perf_counter()
    _ = plan.wiring  # the dependencies as numbers: once per plan, shared by all its runs
    wiring_s = time.perf_counter() - start
    trace = simulate(spec, engine="python").trace.to_array()
    result = run_plan(plan, costs)
    same = all(np.array_equal(result.actions["start"][result.actions["device"] == j], trace["time"][(trace["action"] == "start") & (trace["worker"] == j)])
               for j in range(K))
    timing = paired_ratio(lambda: run_plan(plan, costs), lambda: simulate(spec, engine="python"), rounds=rounds)
    # a plan run once pays its wiring in that run: the ratio with it added to the executor's time
    first_run = (timing["numerator_s_median"] + wiring_s) / timing["denominator_s_median"]
    return {"updates": K * steps, "same_start_times": bool(same), "plan_build_and_check_s": build_s, "plan_wiring_s": wiring_s,
            "first_run_ratio": first_run, **timing}


def trace_comparison(steps: int, rounds: int) -> dict:
    """Sync DGL with queues of 5 as the DGL plan (back-pressure, the spec's compute streams, the
    pipeline's trace rows; dglsim.sim.as_plan) against the pipeline simulator: the same trace,
    byte for byte (checked), and the time ratio of a wired plan's run."""
    spec = spec_from_dict({"mode": "sync", "workers": K, "steps": steps, "compute": list(SECONDS), "slowdown": list(SLOWDOWN), "buffer": 5,
                           "latency": 1e-4, "bandwidth": 1e9, "payload_bytes": NBYTES})
    plan, costs = sync_plan(spec)
    _ = plan.wiring

    def as_plan():
        return run_plan(plan, costs, capacity=spec.buffer, durations=worker_streams(spec).compute, trace=True)

    same = Trace(as_plan().trace_rows).text() == simulate(spec, engine="python").trace.text()
    timing = paired_ratio(as_plan, lambda: simulate(spec, engine="python"), rounds=rounds)
    return {"updates": K * steps, "byte_identical_trace": bool(same), **timing}


def makespans(steps: int) -> list[dict]:
    rows = []
    f = T / 3
    for k, m in ((2, 1), (4, 4), (4, 8), (8, 8), (8, 32)):
        for method in ("gpipe", "1f1b"):
            r = run_plan(build_plan(method, k, steps, 96, m), ActionCosts((T,) * k))
            closed = (m + k - 1) * 3 * f / m
            rows.append({"method": method, "K": k, "m": m, "per_minibatch_s": r.makespan / steps, "closed_form_s": closed,
                         "bubble": float(r.bubble().mean()), "bubble_closed_form": (k - 1) / (m + k - 1)})
    for k in (2, 4, 8):
        for method in ("dgl", "ddg", "dni"):
            r = run_plan(build_plan(method, k, steps, 96), ActionCosts((T,) * k))
            rows.append({"method": method, "K": k, "m": 1, "per_minibatch_s": r.makespan / steps, "closed_form_s": (steps + k - 1) * T / steps,
                         "bubble": float(r.bubble().mean()), "bubble_closed_form": (k - 1) / (steps + k - 1)})
        fr = [run_plan(build_plan("features_replay", k, s, 96), ActionCosts((T,) * k)).makespan for s in (steps, 2 * steps)]
        rows.append({"method": "features_replay", "K": k, "m": 1, "per_minibatch_s": (fr[1] - fr[0]) / steps, "closed_form_s": 4 * f,
                     "bubble": float("nan"), "bubble_closed_form": float("nan")})
        g = run_plan(build_plan("greedy", k, steps, 96), ActionCosts((T,) * k))
        rows.append({"method": "greedy", "K": k, "m": 1, "per_minibatch_s": g.makespan / steps, "closed_form_s": (k * steps * T + (k - 1) * f) / steps,
                     "bubble": float(g.bubble().mean()), "bubble_closed_form": float("nan")})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20000, help="mini-batches per module in the engine comparison")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    engine = engine_comparison(args.steps, args.rounds)
    print(f"DGL plan on the plan executor vs sync DGL on the pipeline simulator (Python engine), {engine['updates']:,} updates: "
          f"same start times {engine['same_start_times']}; time ratio {engine['ratio_median']:.2f} (quartiles {engine['ratio_q1']:.2f}-{engine['ratio_q3']:.2f}; "
          f"goal <= 1.2), {engine['first_run_ratio']:.2f} for a plan's first run (its wiring, {engine['plan_wiring_s']:.2f} s, included); "
          f"plan built and checked in {engine['plan_build_and_check_s']:.2f} s")
    traced = trace_comparison(args.steps, args.rounds)
    print(f"sync DGL with queues of 5 as the DGL plan with the pipeline's trace rows vs the pipeline simulator, {traced['updates']:,} updates: "
          f"byte-identical trace {traced['byte_identical_trace']}; time ratio {traced['ratio_median']:.2f} "
          f"(quartiles {traced['ratio_q1']:.2f}-{traced['ratio_q3']:.2f}; goal <= 1.2)")
    rows = makespans(40)
    print(f"{'method':>16} {'K':>3} {'m':>3} {'s per mini-batch':>17} {'closed form':>12} {'rel. error':>10} {'bubble':>7} {'closed':>7}")
    for r in rows:
        error = abs(r["per_minibatch_s"] - r["closed_form_s"]) / r["closed_form_s"]
        print(f"{r['method']:>16} {r['K']:>3} {r['m']:>3} {r['per_minibatch_s']:>17.6f} {r['closed_form_s']:>12.6f} {error:>10.1e} {r['bubble']:>7.3f} {r['bubble_closed_form']:>7.3f}")
    finish_report({"engine": engine, "trace": traced, "makespans": rows}, args.json)


if __name__ == "__main__":
    main()
