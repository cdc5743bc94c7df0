"""What every simulator mode shares: the random streams of a spec, the callbacks training plugs
in through, and the result of a run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np

from dglsim.buffers import Item
from dglsim.delays import BLOCK, DelayStream
from dglsim.sim.spec import PipelineSpec
from dglsim.sim.trace import Trace

__all__ = ["Compute", "Size", "Periodic", "SimResult", "WorkerStreams", "worker_streams"]

Compute = Callable[[int, Item], Any]
Size = Callable[[int, Any], int]


@dataclass
class SimResult:
    spec: PipelineSpec
    trace: Trace
    updates: list[int]  # updates done per worker
    makespan: float
    events: int  # engine events processed


@dataclass(frozen=True)
class WorkerStreams:
    compute: list[DelayStream]
    latency: list[DelayStream]
    policy: list[np.random.Generator]
    arrival: DelayStream | None
    scheduler: np.random.Generator  # paper mode's choice of module


def _slowest_replica(spec: PipelineSpec, j: int, first: np.random.Generator) -> DelayStream:
    """Durations of module j's updates: the slowest of its replicas' compute times, then its
    all-reduce. Replica 0 draws from the module's own stream (so one replica is the plain
    pipeline); replica r >= 1 from a stream keyed (3K + 2, j, r) under the spec's seed, so it
    does not depend on how many replicas the other modules have."""
    k, n = spec.k, spec.replicas_of(j)
    rngs = [first] + [np.random.default_rng(np.random.SeedSequence(spec.seed, spawn_key=(3 * k + 2, j, r))) for r in range(1, n)]
    sources = [spec.replica_model(j, r)._blocks(rng, BLOCK) for r, rng in enumerate(rngs)]
    allreduce = spec.allreduce_seconds(j)

    def blocks() -> Iterator[np.ndarray]:
        while True:
            out = np.array(next(sources[0]), dtype=float)
            for source in sources[1:]:
                np.maximum(out, next(source), out=out)
            if allreduce:
                out += allreduce
            yield out

    return DelayStream(blocks())


def worker_streams(spec: PipelineSpec) -> WorkerStreams:
    """Independent random streams per worker, link and policy, spawned from the spec's seed in a
    fixed layout, so each stream is the same whatever the mode or the other streams do."""
    k = spec.k
    seeds = np.random.SeedSequence(spec.seed).spawn(3 * k + 2)
    rng = [np.random.default_rng(s) for s in seeds]
    plain = spec.replicas is None and spec.replica_slowdown is None and spec.allreduce is None
    return WorkerStreams(
        compute=[spec.compute_model(j).stream(rng[j]) if plain else _slowest_replica(spec, j, rng[j]) for j in range(k)],
        latency=[spec.link_delay(j)[0].stream(rng[k + j]) for j in range(k - 1)],
        policy=rng[2 * k : 3 * k],
        arrival=spec.arrival.stream(rng[3 * k]) if spec.arrival is not None else None,
        scheduler=rng[3 * k + 1],
    )


Periodic = tuple[float, Callable[[float], None]]  # (every, callback(now)): seconds, or global steps in paper mode
