"""Event-engine throughput against SimPy, and the sync fast path against the event engine.

The same 4-stage tandem (each stage serves items in order, service times drawn up front) is
written on dglsim.engine (callbacks on the heap) and in SimPy (one process per stage, a Store
between stages), stock and with a deque-backed Store (stock Store pops from the front of a
list). Reported: SimPy time / engine time (goal >= 10).

The fast path (dglsim.sim.sync_fast, a max-plus scan per worker) against the event-engine
pipeline (dglsim.sim.simulate on the Python engine, which also records the full trace; the
compiled kernel is bench_kernel.py's) on the same sync spec with
unbounded queues: engine time / fast-path time (goal >= 20).

    python benchmarks/bench_engine.py [--items 50000] [--rounds 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import sys
from collections import deque
from pathlib import Path

import numpy as np
import simpy

sys.path.insert(0, str(Path(__file__).resolve().parent))

from timing import finish_report, paired_ratio  # noqa: E402

from dglsim.engine import Environment  # noqa: E402
from dglsim.sim import simulate, spec_from_dict, sync_fast  # noqa: E402


def engine_tandem(services: list[list[float]]) -> float:
    """The tandem on dglsim.engine: one callback per service; a stage that finishes hands its
    item to the next stage (starting it if idle) and starts its own next item if one waits."""
    env = Environment()
    schedule = env.schedule
    k, n = len(services), len(services[0])
    waiting = [0] * k
    waiting[0] = n - 1
    busy = [False] * k
    busy[0] = True
    done = [0] * k

    def finish(j: int) -> None:
        done[j] += 1
        nxt = j + 1
        if nxt < k:
            if busy[nxt]:
                waiting[nxt] += 1
            else:
                busy[nxt] = True
                schedule(services[nxt][done[nxt]], finish, nxt)
        if waiting[j]:
            waiting[j] -= 1
            schedule(services[j][done[j]], finish, j)
        else:
            busy[j] = False

    schedule(services[0][0], finish, 0)
    env.run()
    return env.now


class DequeStore(simpy.Store):
    """simpy.Store with O(1) gets (the stock one pops from the front of a list)."""

    def __init__(self, env: simpy.Environment) -> None:
        super().__init__(env)
        self.items = deque()

    def _do_get(self, event) -> None:
        if self.items:
            event.succeed(self.items.popleft())


def simpy_tandem(services: list[list[float]], store=simpy.Store) -> float:
    env = simpy.Environment()
    k, n = len(services), len(services[0])
    stores = [store(env) for _ in range(k)]

    def stage(j: int):
        for i in range(n):
            if j > 0:
                yield stores[j].get()
            yield env.timeout(services[j][i])
            if j + 1 < k:
                yield stores[j + 1].put(i)

    for j in range(k):
        env.process(stage(j))
    env.run()
    return env.now


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    k, n = 4, args.items
    rng = np.random.default_rng(0)
    services = [rng.exponential(1.0, n).tolist() for _ in range(k)]
    assert engine_tandem(services) == simpy_tandem(services) == simpy_tandem(services, DequeStore)  # same model, same answer
    services_total = k * n
    results = {}
    for name, store in (("stock", simpy.Store), ("deque", DequeStore)):
        r = paired_ratio(lambda: simpy_tandem(services, store), lambda: engine_tandem(services), rounds=args.rounds, warmup=1)
        results[f"engine_vs_simpy_{name}"] = r | {"engine_services_per_s": services_total / r["denominator_s_median"],
                                                 "simpy_services_per_s": services_total / r["numerator_s_median"]}
        print(f"engine vs SimPy ({name} Store): {r['ratio_median']:.1f}x (IQR {r['ratio_q1']:.1f}-{r['ratio_q3']:.1f}); "
              f"engine {services_total / r['denominator_s_median'] / 1e6:.2f} M services/s, SimPy {services_total / r['numerator_s_median'] / 1e6:.3f} M/s")

    spec = spec_from_dict({"mode": "sync", "workers": k, "steps": n, "seed": 0,
                           "compute": {"kind": "exponential", "mean": 1.0}, "latency": {"kind": "exponential", "mean": 0.1},
                           "payload_bytes": 1000, "bandwidth": 1e5})
    np.testing.assert_allclose(sync_fast(spec).makespan, simulate(spec, engine="python").makespan, rtol=1e-12)
    r = paired_ratio(lambda: simulate(spec, engine="python"), lambda: sync_fast(spec), rounds=args.rounds, warmup=1)
    results["fastpath_vs_pipeline"] = r | {"fast_services_per_s": services_total / r["denominator_s_median"],
                                           "pipeline_services_per_s": services_total / r["numerator_s_median"]}
    print(f"sync fast path vs event-engine pipeline (with trace): {r['ratio_median']:.0f}x (IQR {r['ratio_q1']:.0f}-{r['ratio_q3']:.0f}); "
          f"fast path {services_total / r['denominator_s_median'] / 1e6:.1f} M services/s, pipeline {services_total / r['numerator_s_median'] / 1e6:.3f} M/s")
    r = paired_ratio(lambda: engine_tandem(services), lambda: sync_fast(spec), rounds=args.rounds, warmup=1)
    results["fastpath_vs_engine_tandem"] = r
    print(f"sync fast path vs plain engine tandem: {r['ratio_median']:.0f}x (IQR {r['ratio_q1']:.0f}-{r['ratio_q3']:.0f})")
    finish_report({"benchmark": "engine", "k": k, "items": n, "results": results}, args.json)


if __name__ == "__main__":
    main()
