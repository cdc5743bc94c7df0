"""A vectorised fast path for `sync` mode with unbounded queues.

With no blocking, departures follow the max-plus recurrence (items i in order, workers j):

    start[j][i]  = max(arrive[j][i], depart[j][i-1])
    depart[j][i] = start[j][i] + S[j][i]
    sent[j][i]     = max(depart[j][i], sent[j][i-1]) + bytes_j / bandwidth   # one transfer at a time
    arrive[j+1][i] = max(arrive[j+1][i-1], sent[j][i] + latency[j][i])      # in-order delivery

With C = cumsum(S), depart_i - C_i = max(arrive_i - C_{i-1}, depart_{i-1} - C_{i-1}), so
depart = C + running_max(arrive - C_shifted): one numpy scan per worker (and one per link)
instead of a Python event per service. It draws the same random streams in the same order as the event engine and
agrees with it to float rounding (tests/sim/test_modes.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dglsim.errors import InvalidArgument
from dglsim.sim.spec import PipelineSpec
from dglsim.sim.streams import worker_streams

__all__ = ["sync_fast", "FastResult"]


@dataclass(frozen=True)
class FastResult:
    arrive: np.ndarray  # (K, N) arrival at each worker's queue
    start: np.ndarray  # (K, N)
    depart: np.ndarray  # (K, N) update finished

    @property
    def makespan(self) -> float:
        return float(self.depart[-1, -1])


def _max_plus(ready: np.ndarray, service: np.ndarray) -> np.ndarray:
    """Completion times of a FIFO single server: done_i = max(ready_i, done_{i-1}) + service_i."""
    c = np.cumsum(service)
    return c + np.maximum.accumulate(ready - (c - service))


def sync_fast(spec: PipelineSpec) -> FastResult:
    if spec.mode != "sync" or spec.buffer is not None:
        raise InvalidArgument(f"sync_fast needs mode 'sync' with unbounded queues (buffer absent), got mode {spec.mode!r}, buffer {spec.buffer!r}")
    k, n = spec.k, spec.steps
    streams = worker_streams(spec)
    arrive = np.empty((k, n))
    start = np.empty((k, n))
    depart = np.empty((k, n))
    if streams.arrival is None:
        arrive[0] = 0.0
    else:
        arrive[0] = np.cumsum(streams.arrival.take(n))
    for j in range(k):
        service = streams.compute[j].take(n)
        depart[j] = _max_plus(arrive[j], service)
        start[j] = depart[j] - service
        if j < k - 1:
            sent = _max_plus(depart[j], np.full(n, spec.link_delay(j)[1]))
            arrive[j + 1] = np.maximum.accumulate(sent + streams.latency[j].take(n))
    return FastResult(arrive, start, depart)
