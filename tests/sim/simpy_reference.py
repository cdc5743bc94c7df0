"""An independent implementation of the pipeline in SimPy, for cross-checking the simulator.

It shares no code with dglsim.sim: processes and stores instead of callbacks, its own buffer
selection, its own bookkeeping. Durations are given as lists (replayed), so both simulators
see the same numbers. Returns, per worker, the list of update finish times.

SimPy only takes relative delays, so a time computed as `now + (t - now)` may differ from `t`
by float rounding; comparisons with dglsim use a relative tolerance of 1e-12 for that reason.
"""

from __future__ import annotations

import simpy


def run_reference(mode: str, compute: list[list[float]], latency: list[list[float]], *, capacity: int | None = None,
                  policy: str = "least_used", max_reuse: int | None = None, transfer: float = 0.0) -> list[list[float]]:
    """`transfer`: seconds a link is occupied per item (bytes / bandwidth); links send one item at a time."""
    k, steps = len(compute), len(compute[0])
    env = simpy.Environment()
    finishes: list[list[float]] = [[] for _ in range(k)]
    version = [0] * k
    link_free = [0.0] * k
    queues = [simpy.Store(env) for _ in range(k)]  # sync inputs (FIFO)
    slots = [simpy.Container(env, init=capacity, capacity=capacity) if capacity else None for _ in range(k)]
    buffers: list[list[list]] = [[] for _ in range(k)]  # async: [id, version, birth, reuse], oldest first
    wakeups = [env.event() for _ in range(k)]
    links = [simpy.Resource(env, capacity=1) for _ in range(k)]
    counter = [0]

    def deliver(j: int, item: list, arrival: float):
        yield env.timeout(arrival - env.now)
        if mode == "sync":
            yield queues[j].put(item)
        else:
            buffers[j].append(item)
            if len(buffers[j]) > capacity:
                buffers[j].pop(0)
            if not wakeups[j].triggered:
                wakeups[j].succeed()

    def transmit(j: int, item: list, n: int):
        with links[j].request() as slot:
            yield slot
            yield env.timeout(transfer)
        arrival = max(link_free[j], env.now + latency[j][n])
        link_free[j] = arrival
        yield from deliver(j + 1, item, arrival)

    def send(j: int, item: list, n: int):
        env.process(transmit(j, item, n))

    def pick(j: int) -> list:
        items = buffers[j]
        if policy == "fifo":
            index = 0
        elif policy == "newest":
            index = len(items) - 1
        else:  # least_used, ties to the newest
            lowest = min(it[3] for it in items)
            index = max(i for i, it in enumerate(items) if it[3] == lowest)
        item = items[index]
        item[3] += 1
        if max_reuse is not None and item[3] >= max_reuse:
            items.pop(index)
        return item

    def worker(j: int):
        for n in range(steps):
            if j > 0:
                if mode == "sync":
                    yield queues[j].get()
                    if slots[j] is not None:
                        yield slots[j].put(1)  # the consumed item's slot is free again
                else:
                    while not buffers[j]:
                        wakeups[j] = env.event()
                        yield wakeups[j]
                    pick(j)
            yield env.timeout(compute[j][n])
            version[j] += 1
            finishes[j].append(env.now)
            if j < k - 1:
                counter[0] += 1
                item = [counter[0], version[j], env.now, 0]
                if mode == "sync" and slots[j + 1] is not None:
                    yield slots[j + 1].get(1)  # block until the next queue has room
                send(j, item, n)

    for j in range(k):
        env.process(worker(j))
    env.run()
    return finishes
