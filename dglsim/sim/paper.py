"""The authors' scheduler (`paper` mode): one global step at a time, no time axis.

Their asynchronous DGL experiment runs in one process: each step picks module j with
probability p_j and makes it do one update on an item sampled from its buffer; a module slowed
by `noise` has its weight reduced to 1 - noise, i.e. a slowdown of 1 / (1 - noise). Here p_j is
proportional to 1 / slowdown_j, so `slowdown = 1 / (1 - noise)` reproduces their setting.
Warm-up follows their order 0, 0, 1, 1, ..., K-1, K-1 so every buffer holds items before the
random steps begin.

The trace's time column is the global step index; the makespan is the number of global steps. As in the authors' experiment, a module
that has done its `steps` updates stops updating but keeps forwarding: when picked it takes
an item and sends its output on ("forward" rows), so the modules after it are not starved.
A picked module whose buffer is empty does nothing that step. The run ends when every module
is done.
"""

from __future__ import annotations

import numpy as np

from dglsim.buffers import Item, ReplayBuffer, make_policy
from dglsim.sim.spec import PipelineSpec
from dglsim.sim.streams import Compute, Periodic, SimResult, Size, worker_streams
from dglsim.sim.trace import Trace

__all__ = ["simulate_paper", "paper_probabilities"]


def paper_probabilities(spec: PipelineSpec) -> np.ndarray:
    """p_j ∝ 1 / slowdown_j."""
    rates = 1.0 / np.asarray(spec.slowdown if spec.slowdown else [1.0] * spec.k, dtype=float)
    return rates / rates.sum()


def simulate_paper(spec: PipelineSpec, *, compute: Compute | None = None, forward: Compute | None = None,
                   every_steps: Periodic | None = None, size: Size | None = None) -> SimResult:
    """`compute(j, item)` runs an update and returns the output payload; `forward(j, item)` runs
    a finished module's forward pass only; `size(j, payload)` gives the bytes the trace records
    (there are no link times in this mode); `every_steps = (n, callback)` calls callback(step)
    each time the global step count passes a multiple of n (n may be fractional)."""
    k = spec.k
    streams = worker_streams(spec)
    policy = make_policy(spec.policy)
    buffers = [None] + [ReplayBuffer(spec.buffer, policy, max_reuse=spec.max_reuse) for _ in range(1, k)]
    version = [0] * k
    trace = Trace()
    record = trace.rows.append
    next_id = 0
    p = paper_probabilities(spec)
    cumulative = np.cumsum(p)
    cumulative[-1] = 1.0  # rounding must not leave a gap above the last module
    unfinished = [k]  # modules still below their update budget

    def step(t: int, j: int) -> None:
        nonlocal next_id
        training = version[j] < spec.steps
        if j == 0:
            item = Item(next_id, 0, float(t))
            next_id += 1
            item.reuse = 1
            occupancy = 0
        else:
            item = buffers[j].take(streams.policy[j])
            if item is None:
                return
            occupancy = len(buffers[j])
        producer = version[j - 1] if j > 0 else 0
        row = (item.id, item.version, producer - item.version, t - item.birth, item.reuse, occupancy, 0)
        if training:
            record((float(t), j, "start", *row))
            payload = compute(j, item) if compute is not None else None
            version[j] += 1
            if version[j] == spec.steps:
                unfinished[0] -= 1
            record((float(t), j, "finish", item.id, version[j], 0, 0.0, 0, occupancy, 0))
        else:
            record((float(t), j, "forward", *row))
            payload = forward(j, item) if forward is not None else None
        if j < k - 1:
            out = Item(next_id, version[j], float(t), payload)
            next_id += 1
            record((float(t), j, "send", out.id, out.version, 0, 0.0, 0, 0, size(j, payload) if size is not None else spec.bytes_on(j)))
            evicted = buffers[j + 1].put(out)
            if evicted is not None:
                record((float(t), j + 1, "evict", evicted.id, evicted.version, version[j] - evicted.version, t - evicted.birth, evicted.reuse, len(buffers[j + 1]), 0))
            record((float(t), j + 1, "arrive", out.id, out.version, 0, 0.0, 0, len(buffers[j + 1]), 0))

    t = 0
    for j in [j for j in range(k) for _ in range(2)]:  # warm-up 0,0,1,1,...
        step(t, j)
        t += 1
    rng = streams.scheduler
    while unfinished[0]:
        for j in np.searchsorted(cumulative, rng.random(1024), side="right").tolist():  # picks drawn in blocks
            step(t, j)
            t += 1
            if every_steps is not None and t % every_steps[0] < 1:
                every_steps[1](float(t))
            if not unfinished[0]:
                break
    return SimResult(spec, trace, list(version), float(t), t)
