"""The event-driven pipeline: K workers on their own simulated devices, links, queues or
replay buffers, in `sync` or `async` mode.

sync:  worker j takes items from its FIFO queue in order, each once. A queue holds at most
       `buffer` items, counting those still on the link: a producer whose output has no
       room holds it and blocks ("block" ... "unblock") until the consumer starts an item.
async: worker j > 0 samples from a replay buffer of `buffer` items by the policy and never
       waits while it holds an eligible item; a producer never blocks (a full buffer evicts
       its oldest item).
Links: a link transmits one item at a time, payload bytes / bandwidth seconds each, FIFO
(transfers queue behind each other), then the item travels for a sampled latency; items are
delivered in the order sent. The producer does not wait for its transfer (it is handed off).
Worker 0 reads fresh data: always ready, or, with an `arrival` model, items that arrive as a
renewal process and queue (FIFO, unbounded) until worker 0 takes them.

Each worker stops after `steps` updates. The run ends when no event is left.

Training plugs in through `compute(worker, item) -> payload`: called when an update starts,
its return value is the payload of the output item sent on. The simulator knows nothing of it.
`size(worker, payload) -> bytes`, when given, is the size of each item sent (an encoded
activation whose size varies, e.g. when it carries a codebook); otherwise the spec's
payload_bytes of the link.
`every = (seconds, callback)` calls callback(now) at each multiple of `seconds` of simulated
time while the run goes on (training uses it to evaluate).
"""

from __future__ import annotations

from collections import deque
from typing import Any

from dglsim.buffers import Item, ReplayBuffer, make_policy
from dglsim.engine import Environment
from dglsim.sim.spec import PipelineSpec
from dglsim.sim.streams import Compute, Periodic, SimResult, Size, worker_streams
from dglsim.sim.trace import Trace

__all__ = ["run_pipeline"]

class _Pipeline:
    def __init__(self, spec: PipelineSpec, compute: Compute | None, every: Periodic | None, size: Size | None = None) -> None:
        self.spec, self.k, self.compute, self.every, self.size = spec, spec.k, compute, every, size
        self.env = Environment()
        self.streams = worker_streams(spec)
        self.bytes = [spec.bytes_on(j) for j in range(self.k - 1)]
        self.rate = [spec.link_rate(j) for j in range(self.k - 1)]
        self.version = [0] * self.k
        self.busy = [False] * self.k
        self.held: list[Item | None] = [None] * self.k  # sync: output waiting for queue space
        self.in_transit = [0] * self.k  # sync: items on the link into worker j
        self.next_id = 0
        self.arrived = 0  # fresh items delivered to worker 0 by the arrival process
        self.last_arrival = [0.0] * max(self.k - 1, 0)  # time the last item on each link arrives
        self.link_busy = [0.0] * max(self.k - 1, 0)  # time each link finishes its queued transfers
        self.trace = Trace()
        self.record = self.trace.rows.append
        self.sync = spec.mode == "sync"
        self.capacity = spec.buffer if spec.buffer is not None else float("inf")
        if self.sync:
            self.inputs: list[Any] = [deque() for _ in range(self.k)]
        else:
            policy = make_policy(spec.policy)
            self.inputs = [deque()] + [ReplayBuffer(spec.buffer, policy, max_reuse=spec.max_reuse) for _ in range(1, self.k)]

    def _new_item(self, version: int, payload: Any = None) -> Item:
        item = Item(self.next_id, version, self.env.now, payload)
        self.next_id += 1
        return item

    # --- worker 0's fresh data -------------------------------------------------
    def _arrival(self) -> None:
        self.arrived += 1
        self._arrive(0, self._new_item(0))
        if self.arrived < self.spec.steps:  # no more arrivals than worker 0 can use
            self.env.schedule(self.streams.arrival(), self._arrival)

    # --- the worker cycle --------------------------------------------------------
    def _try_start(self, j: int) -> None:
        if self.busy[j] or self.held[j] is not None or self.version[j] >= self.spec.steps:
            return
        inputs, now = self.inputs[j], self.env.now
        if j == 0 and self.streams.arrival is None:
            item = self._new_item(0)  # fresh data, always ready
            item.reuse = 1
        elif self.sync or j == 0:
            if not inputs:
                return
            item = inputs.popleft()
            item.reuse += 1
        else:
            item = inputs.take(self.streams.policy[j])
            if item is None:
                return
        producer_version = self.version[j - 1] if j > 0 else 0
        self.busy[j] = True
        self.record((now, j, "start", item.id, item.version, producer_version - item.version, now - item.birth, item.reuse, len(inputs), 0))
        payload = self.compute(j, item) if self.compute is not None else None
        self.env.schedule(self.streams.compute[j](), self._finish, j, item.id, payload)
        if self.sync and j > 0:
            self._slot_freed(j - 1)  # taking the item frees its slot in the queue

    def _finish(self, j: int, consumed: int, payload: Any) -> None:
        now = self.env.now
        self.version[j] += 1
        self.busy[j] = False
        self.record((now, j, "finish", consumed, self.version[j], 0, 0.0, 0, len(self.inputs[j]), 0))
        if j < self.k - 1:
            out = self._new_item(self.version[j], payload)
            if self.sync and len(self.inputs[j + 1]) + self.in_transit[j + 1] >= self.capacity:
                self.held[j] = out
                self.record((now, j, "block", out.id, out.version, 0, 0.0, 0, len(self.inputs[j + 1]), 0))
            else:
                self._send(j, out)
        self._try_start(j)

    def _slot_freed(self, producer: int) -> None:
        out = self.held[producer]
        if out is not None:
            self.held[producer] = None
            self.record((self.env.now, producer, "unblock", out.id, out.version, 0, 0.0, 0, len(self.inputs[producer + 1]), 0))
            self._send(producer, out)
            self._try_start(producer)

    def _send(self, j: int, out: Item) -> None:
        size = self.size(j, out.payload) if self.size is not None else self.bytes[j]
        self.record((self.env.now, j, "send", out.id, out.version, 0, 0.0, 0, 0, size))
        if self.sync:
            self.in_transit[j + 1] += 1
        # A link sends one item at a time at its bandwidth (transfers queue behind each other),
        # then the item travels for its latency; delivery is in order, like a TCP stream.
        sent = max(self.env.now, self.link_busy[j]) + size / self.rate[j]
        self.link_busy[j] = sent
        arrival = max(self.last_arrival[j], sent + self.streams.latency[j]())
        self.last_arrival[j] = arrival
        self.env.schedule_at(arrival, self._arrive, j + 1, out)

    def _arrive(self, j: int, item: Item) -> None:
        now, inputs = self.env.now, self.inputs[j]
        if self.sync and j > 0:
            self.in_transit[j] -= 1
            inputs.append(item)
        elif j == 0:
            inputs.append(item)
        else:
            evicted = inputs.put(item)
            if evicted is not None:
                self.record((now, j, "evict", evicted.id, evicted.version, self.version[j - 1] - evicted.version, now - evicted.birth, evicted.reuse, len(inputs), 0))
        self.record((now, j, "arrive", item.id, item.version, 0, 0.0, item.reuse, len(inputs), 0))
        self._try_start(j)

    def _tick(self, n: int) -> None:
        if self.env.peek() == float("inf"):  # the run is over: no tick past its last event
            return
        interval, callback = self.every
        callback(self.env.now)
        self.env.schedule_at((n + 1) * interval, self._tick, n + 1)

    def run(self) -> SimResult:
        if self.every is not None:
            self.env.schedule_at(self.every[0], self._tick, 1)
        if self.streams.arrival is not None:
            self.env.schedule(self.streams.arrival(), self._arrival)
        for j in range(self.k):
            self.env.schedule(0.0, self._try_start, j)
        self.env.run()
        # The makespan is the last event of the pipeline itself (a periodic tick is not one).
        makespan = self.trace.rows[-1][0] if self.trace.rows else 0.0
        return SimResult(self.spec, self.trace, list(self.version), makespan, self.env.processed)


def run_pipeline(spec: PipelineSpec, *, compute: Compute | None = None, every: Periodic | None = None, size: Size | None = None) -> SimResult:
    """Run a sync or async `spec` on the event engine; `every = (seconds, callback)`."""
    return _Pipeline(spec, compute, every, size).run()
