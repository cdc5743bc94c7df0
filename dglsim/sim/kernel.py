"""The compiled timing kernel: timing-only runs of every mode in machine code (numba).

It executes the same model as the Python engine (`dglsim.sim.pipeline` for sync and async,
`dglsim.sim.paper` for paper mode) and gives the same trace, row for row and bit for bit
(tests/sim/test_kernel.py compares them over random specs). The Python engine stays the
reference, and the only path for training, whose callbacks run Python at every update.

How it stays identical:
- durations come from the same streams (`worker_streams`), drawn ahead in Python: worker j
  starts exactly `steps` updates and link j carries at most `steps` items, so `take(steps)`
  gives the values the engine would draw one at a time (DelayStream's contract);
- events are ordered by (time, sequence number) as in `dglsim.engine`, and scheduled in the
  engine's order (the engine's recursive calls become loops in the same order);
- the uniform policy draws `integers(0, n)` from the worker's own numpy Generator, inside the
  kernel: numba's Generator methods follow numpy's algorithms on the same bit generator;
- paper mode's picks are numpy's `searchsorted` of the scheduler's blocks of 1,024 draws.

The kernel is resumable: it runs until its output chunk is full, its event heap or item pool
needs room, or (paper mode) it needs the next block of picks, and returns a status; the driver
(`run_compiled`) seals the chunk, grows the arrays or draws the picks, and calls it again. So a
run of any length holds one chunk of rows at a time, unless the full trace is kept.

numba is a dependency of dglsim (`dglsim.sim.jit`); where it cannot be imported, `simulate` falls
back to the Python engine with a one-line warning: the kernel's loops would run interpreted,
slower than the engine they copy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from dglsim.buffers import POLICIES
from dglsim.sim.columnar import ColumnarTrace
from dglsim.sim.jit import available, inline, jit, typed_list, unavailable_reason
from dglsim.sim.rows import CHUNK_DTYPE, CHUNK_ROWS
from dglsim.sim.spec import PipelineSpec
from dglsim.sim.streams import SimResult, worker_streams

__all__ = ["available", "unavailable_reason", "run_compiled"]

POLICY_CODES = {name: i for i, name in enumerate(POLICIES)}  # fifo newest uniform least_used authors
FIFO, NEWEST, UNIFORM, LEAST_USED, AUTHORS = (POLICY_CODES[n] for n in ("fifo", "newest", "uniform", "least_used", "authors"))
START, FINISH, FORWARD, SEND, ARRIVE, EVICT, BLOCK, UNBLOCK = range(8)  # dglsim.sim.rows.ACTIONS
EV_ARRIVAL, EV_TRY, EV_FINISH, EV_ARRIVE = range(4)
DONE, CHUNK_FULL, HEAP_FULL, SLOTS_FULL, NEED_PICKS = range(5)
# integer registers of the kernel's state
SEQ, NEXT_ID, ARRIVED, HEAP_N, ROWS, FREE_TOP, EVENTS, UNFINISHED, T, PICK = range(10)


@inline  # a call per start would cost a third of the kernel
def _select(policy, buf, j, head, n, cap, it_reuse, full, gens):
    """Logical index (0 = oldest) in buffer j of the item the policy takes: dglsim.buffers' policies."""
    if policy == LEAST_USED:
        best, best_reuse = 0, it_reuse[buf[j, head]]
        for i in range(1, n):
            r = it_reuse[buf[j, (head + i) % cap]]
            if r <= best_reuse:
                best, best_reuse = i, r
        return best
    if policy == FIFO:
        return 0
    if policy == NEWEST:
        return n - 1
    if policy == UNIFORM:
        return gens[j].integers(0, n)
    first = it_reuse[buf[j, head]]
    fewest = first
    for i in range(1, n):
        fewest = min(fewest, it_reuse[buf[j, (head + i) % cap]])
    if full and first == fewest:
        return 0
    best = 0
    for i in range(n):
        if it_reuse[buf[j, (head + i) % cap]] == fewest:
            best = i
    return best


@inline
def _write(si, o_time, o_worker, o_action, o_item, o_version, o_stale, o_age, o_reuse, o_occ, o_bytes, t, w, action, item, ver, stale, age, reuse, occ, nbytes):
    """Append one trace row to the output chunk's columns (CHUNK_DTYPE's order)."""
    n = si[ROWS]
    o_time[n] = t
    o_worker[n] = w
    o_action[n] = action
    o_item[n] = item
    o_version[n] = ver
    o_stale[n] = stale
    o_age[n] = age
    o_reuse[n] = reuse
    o_occ[n] = occ
    o_bytes[n] = nbytes
    si[ROWS] = n + 1


@inline
def _take(policy, buf, j, b_head, b_len, capacity, max_reuse, it_reuse, gens):
    """ReplayBuffer.take on buffer j (non-empty): the slot the policy picks, its use counted;
    (slot, True) when it reached max_reuse and left the buffer, else (slot, False)."""
    cap, n = buf.shape[1], b_len[j]
    i = _select(policy, buf, j, b_head[j], n, cap, it_reuse, n == capacity, gens)
    slot = buf[j, (b_head[j] + i) % cap]
    it_reuse[slot] += 1
    if max_reuse > 0 and it_reuse[slot] >= max_reuse:  # leaves the buffer: close the gap
        for m in range(i, n - 1):
            buf[j, (b_head[j] + m) % cap] = buf[j, (b_head[j] + m + 1) % cap]
        b_len[j] = n - 1
        return slot, True
    return slot, False


@inline
def _put(buf, j, b_head, b_len, capacity, slot):
    """ReplayBuffer.put on buffer j: the evicted oldest slot when it was full, else -1."""
    cap, n = buf.shape[1], b_len[j]
    buf[j, (b_head[j] + n) % cap] = slot
    if n + 1 > capacity:
        evicted = buf[j, b_head[j] % cap]
        b_head[j] = (b_head[j] + 1) % cap
        return evicted
    b_len[j] = n + 1
    return -1


@jit
def _advance_events(sync, policy, k, steps, capacity, max_reuse, has_arrival, si,
                    version, busy, held, in_transit, ncomp, nlat, last_arrival, link_busy,
                    compute, latency, arrivals, send_bytes, rate,
                    h_time, h_seq, h_ev,
                    it_id, it_version, it_birth, it_reuse, it_next, free,
                    q_head, q_tail, q_len, buf, b_head, b_len, gens, o_time, o_worker, o_action, o_item, o_version, o_stale, o_age, o_reuse, o_occ, o_bytes):
    """Run sync or async events until done or out of room; returns a status."""
    max_rows = o_time.shape[0]
    room_rows = 3 * k + 8  # rows one event can write: a chain of unblocks through every worker
    room_heap = k + 4
    room_slots = k + 2

    def record(t, w, action, item, ver, stale, age, reuse, occ, nbytes):
        _write(si, o_time, o_worker, o_action, o_item, o_version, o_stale, o_age, o_reuse, o_occ, o_bytes, t, w, action, item, ver, stale, age, reuse, occ, nbytes)

    def push(t, kind, j, arg):
        """Schedule an event; (time, sequence) orders the heap, as in dglsim.engine."""
        n = si[HEAP_N]
        seq = si[SEQ]
        si[SEQ] = seq + 1
        packed = (arg << 24) | (j << 2) | kind  # kind: 2 bits, worker: 22 bits, item or slot: the rest
        i = n
        while i > 0:  # sift up
            parent = (i - 1) >> 1
            if h_time[parent] < t or (h_time[parent] == t and h_seq[parent] < seq):
                break
            h_time[i], h_seq[i], h_ev[i] = h_time[parent], h_seq[parent], h_ev[parent]
            i = parent
        h_time[i], h_seq[i], h_ev[i] = t, seq, packed
        si[HEAP_N] = n + 1

    def pop():
        """(time, packed event) of the earliest event."""
        n = si[HEAP_N] - 1
        t, packed = h_time[0], h_ev[0]
        lt, ls, le = h_time[n], h_seq[n], h_ev[n]
        si[HEAP_N] = n
        i = 0
        while True:  # sift the last entry down from the root
            c = 2 * i + 1
            if c >= n:
                break
            if c + 1 < n and (h_time[c + 1] < h_time[c] or (h_time[c + 1] == h_time[c] and h_seq[c + 1] < h_seq[c])):
                c += 1
            if lt < h_time[c] or (lt == h_time[c] and ls < h_seq[c]):
                break
            h_time[i], h_seq[i], h_ev[i] = h_time[c], h_seq[c], h_ev[c]
            i = c
        if n > 0:
            h_time[i], h_seq[i], h_ev[i] = lt, ls, le
        return t, packed

    def new_item(ver, birth):
        top = si[FREE_TOP] - 1
        slot = free[top]
        si[FREE_TOP] = top
        it_id[slot] = si[NEXT_ID]
        si[NEXT_ID] += 1
        it_version[slot] = ver
        it_birth[slot] = birth
        it_reuse[slot] = 0
        it_next[slot] = -1
        return slot

    def release(slot):
        free[si[FREE_TOP]] = slot
        si[FREE_TOP] += 1

    def q_push(j, slot):
        if q_len[j] == 0:
            q_head[j] = slot
        else:
            it_next[q_tail[j]] = slot
        q_tail[j] = slot
        it_next[slot] = -1
        q_len[j] += 1

    def q_pop(j):
        slot = q_head[j]
        q_head[j] = it_next[slot]
        q_len[j] -= 1
        return slot

    def occupancy(j):
        if sync or j == 0:
            return q_len[j]
        return b_len[j]

    def send(j, slot, now):
        size = send_bytes[j]
        record(now, j, SEND, it_id[slot], it_version[slot], 0, 0.0, 0, 0, size)
        if sync:
            in_transit[j + 1] += 1
        sent = max(now, link_busy[j]) + size / rate[j]
        link_busy[j] = sent
        d = latency[j, nlat[j]]
        nlat[j] += 1
        arrival = max(last_arrival[j], sent + d)
        last_arrival[j] = arrival
        push(arrival, EV_ARRIVE, j + 1, slot)

    def start_one(j, now):
        """The engine's _try_start without its tail call; True when an update started."""
        if busy[j] or held[j] >= 0 or version[j] >= steps:
            return False
        if j == 0 and not has_arrival:
            item, ver, birth, reuse, slot = si[NEXT_ID], 0, now, 1, -1
            si[NEXT_ID] += 1
            occ = 0
        elif sync or j == 0:
            if q_len[j] == 0:
                return False
            slot = q_pop(j)
            it_reuse[slot] += 1
            item, ver, birth, reuse = it_id[slot], it_version[slot], it_birth[slot], it_reuse[slot]
            occ = q_len[j]
        else:
            if b_len[j] == 0:
                return False
            slot, left = _take(policy, buf, j, b_head, b_len, capacity, max_reuse, it_reuse, gens)
            item, ver, birth, reuse = it_id[slot], it_version[slot], it_birth[slot], it_reuse[slot]
            if not left:
                slot = -1  # still held by the buffer
            occ = b_len[j]
        producer = version[j - 1] if j > 0 else 0
        busy[j] = True
        record(now, j, START, item, ver, producer - ver, now - birth, reuse, occ, 0)
        if slot >= 0:
            release(slot)
        d = compute[j, ncomp[j]]
        ncomp[j] += 1
        push(now + d, EV_FINISH, j, item)
        return True

    def try_start(j, now):
        while start_one(j, now) and sync and j > 0:
            p = j - 1  # taking the item freed its slot in the queue: the engine's _slot_freed(p)
            out = held[p]
            if out < 0:
                return
            held[p] = -1
            record(now, p, UNBLOCK, it_id[out], it_version[out], 0, 0.0, 0, q_len[p + 1], 0)
            send(p, out, now)
            j = p

    def arrive(j, slot, now):
        if sync and j > 0:
            in_transit[j] -= 1
            q_push(j, slot)
        elif j == 0:
            q_push(j, slot)
        else:
            ev = _put(buf, j, b_head, b_len, capacity, slot)
            if ev >= 0:
                record(now, j, EVICT, it_id[ev], it_version[ev], version[j - 1] - it_version[ev], now - it_birth[ev], it_reuse[ev], b_len[j], 0)
                release(ev)
        record(now, j, ARRIVE, it_id[slot], it_version[slot], 0, 0.0, it_reuse[slot], occupancy(j), 0)
        try_start(j, now)

    while si[HEAP_N] > 0:
        if si[ROWS] + room_rows > max_rows:
            return CHUNK_FULL
        if si[HEAP_N] + room_heap > h_time.shape[0]:
            return HEAP_FULL
        if si[FREE_TOP] < room_slots:
            return SLOTS_FULL
        now, packed = pop()
        si[EVENTS] += 1
        kind, j, arg = packed & 3, (packed >> 2) & 0x3FFFFF, packed >> 24
        if kind == EV_TRY:
            try_start(j, now)
        elif kind == EV_FINISH:
            version[j] += 1
            busy[j] = False
            record(now, j, FINISH, arg, version[j], 0, 0.0, 0, occupancy(j), 0)
            if j < k - 1:
                out = new_item(version[j], now)
                if sync and q_len[j + 1] + in_transit[j + 1] >= capacity:
                    held[j] = out
                    record(now, j, BLOCK, it_id[out], it_version[out], 0, 0.0, 0, q_len[j + 1], 0)
                else:
                    send(j, out, now)
            try_start(j, now)
        elif kind == EV_ARRIVE:
            arrive(j, arg, now)
        else:  # EV_ARRIVAL: fresh data reaches worker 0
            si[ARRIVED] += 1
            arrive(0, new_item(0, now), now)
            if si[ARRIVED] < steps:
                push(now + arrivals[si[ARRIVED]], EV_ARRIVAL, 0, 0)
    return DONE


@jit
def _advance_paper(policy, k, steps, capacity, max_reuse, si, version, picks, send_bytes,
                   it_id, it_version, it_birth, it_reuse, free, buf, b_head, b_len, gens, o_time, o_worker, o_action, o_item, o_version, o_stale, o_age, o_reuse, o_occ, o_bytes):
    """Run paper-mode global steps until done, out of rows, or out of picks; returns a status.
    Warm-up (0, 0, 1, 1, ...) runs first; picks[PICK:] are the scheduler's next choices."""
    max_rows = o_time.shape[0]

    def record(t, w, action, item, ver, stale, age, reuse, occ, nbytes):
        _write(si, o_time, o_worker, o_action, o_item, o_version, o_stale, o_age, o_reuse, o_occ, o_bytes, t, w, action, item, ver, stale, age, reuse, occ, nbytes)

    def step(t, j):
        tf = float(t)
        training = version[j] < steps
        slot = -1
        if j == 0:
            item, ver, birth, reuse = si[NEXT_ID], 0, tf, 1
            si[NEXT_ID] += 1
            occ = 0
        else:
            if b_len[j] == 0:
                return
            slot, left = _take(policy, buf, j, b_head, b_len, capacity, max_reuse, it_reuse, gens)
            item, ver, birth, reuse = it_id[slot], it_version[slot], it_birth[slot], it_reuse[slot]
            if not left:
                slot = -1
            occ = b_len[j]
        producer = version[j - 1] if j > 0 else 0
        if training:
            record(tf, j, START, item, ver, producer - ver, tf - birth, reuse, occ, 0)
            version[j] += 1
            if version[j] == steps:
                si[UNFINISHED] -= 1
            record(tf, j, FINISH, item, version[j], 0, 0.0, 0, occ, 0)
        else:
            record(tf, j, FORWARD, item, ver, producer - ver, tf - birth, reuse, occ, 0)
        if slot >= 0:
            free[si[FREE_TOP]] = slot
            si[FREE_TOP] += 1
        if j < k - 1:
            top = si[FREE_TOP] - 1
            out = free[top]
            si[FREE_TOP] = top
            it_id[out] = si[NEXT_ID]
            si[NEXT_ID] += 1
            it_version[out] = version[j]
            it_birth[out] = tf
            it_reuse[out] = 0
            record(tf, j, SEND, it_id[out], version[j], 0, 0.0, 0, 0, send_bytes[j])
            d = j + 1
            ev = _put(buf, d, b_head, b_len, capacity, out)
            if ev >= 0:
                record(tf, d, EVICT, it_id[ev], it_version[ev], version[j] - it_version[ev], tf - it_birth[ev], it_reuse[ev], b_len[d], 0)
                free[si[FREE_TOP]] = ev
                si[FREE_TOP] += 1
            record(tf, d, ARRIVE, it_id[out], version[j], 0, 0.0, 0, b_len[d], 0)

    while si[T] < 2 * k:  # warm-up
        if si[ROWS] + 6 > max_rows:
            return CHUNK_FULL
        step(si[T], si[T] // 2)
        si[T] += 1
    while si[UNFINISHED] > 0:
        if si[ROWS] + 6 > max_rows:
            return CHUNK_FULL
        if si[PICK] >= picks.shape[0]:
            return NEED_PICKS
        step(si[T], picks[si[PICK]])
        si[PICK] += 1
        si[T] += 1
    return DONE


@dataclass
class _Items:
    """The item pool: slots with a free list, grown by the driver."""

    id: np.ndarray
    version: np.ndarray
    birth: np.ndarray
    reuse: np.ndarray
    next: np.ndarray
    free: np.ndarray

    @classmethod
    def empty(cls, n: int) -> "_Items":
        return cls(np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n), np.zeros(n, np.int64), np.full(n, -1, np.int64),
                   np.arange(n - 1, -1, -1, dtype=np.int64))

    def grown(self, free_top: int) -> tuple["_Items", int]:
        n = self.id.size
        bigger = _Items.empty(2 * n)
        for name in ("id", "version", "birth", "reuse", "next"):
            getattr(bigger, name)[:n] = getattr(self, name)
        bigger.free[:free_top] = self.free[:free_top]
        bigger.free[free_top : free_top + n] = np.arange(2 * n - 1, n - 1, -1)
        return bigger, free_top + n


def run_compiled(spec: PipelineSpec, *, keep: bool = True, on_chunk: Callable[[np.ndarray], None] | None = None,
                 compress: bool = True) -> SimResult:
    """Run a timing-only `spec` in the kernel. Each sealed chunk of rows goes to `on_chunk`
    (streaming summaries, a trace writer); `keep` also keeps them (compressed unless
    `compress` is false) as the result's ColumnarTrace, else the result's trace is empty."""
    if not available():
        raise RuntimeError(unavailable_reason())
    k, steps = spec.k, spec.steps
    streams = worker_streams(spec)
    capacity = spec.buffer if spec.buffer is not None else -1
    if spec.mode == "sync" and spec.buffer is None:
        capacity = np.iinfo(np.int64).max
    policy = POLICY_CODES[spec.policy]
    max_reuse = spec.max_reuse or 0
    si = np.zeros(10, np.int64)
    version = np.zeros(k, np.int64)
    send_bytes = np.array([spec.bytes_on(j) for j in range(k - 1)] or [0], np.int64)
    trace = ColumnarTrace(compress=compress)
    rows = max(CHUNK_ROWS, 4 * (3 * k + 8))
    # The kernel writes its rows into one of two buffers, column by column, while the other's
    # rows are compressed on another thread (a buffer is reused once its compression is done).
    buffers = [np.zeros(rows, dtype=CHUNK_DTYPE) for _ in range(2)]
    pending: list = [None, None]
    current = [0]
    columns = [buffers[0][name] for name in CHUNK_DTYPE.names]
    buf_cap = (spec.buffer or 1) + 1
    buf, b_head, b_len = np.zeros((k, buf_cap), np.int64), np.zeros(k, np.int64), np.zeros(k, np.int64)
    gens = typed_list(streams.policy)
    items = _Items.empty(max(1024, 2 * k * buf_cap + 2 * k))
    si[FREE_TOP] = items.id.size

    last_row = [0.0]  # time of the last row sealed: the makespan of an event-mode run

    def seal() -> None:
        n, i = int(si[ROWS]), current[0]
        if n:
            chunk = buffers[i][:n]
            last_row[0] = float(chunk["time"][-1])
            if on_chunk is not None:
                on_chunk(chunk)
            if keep:
                pending[i] = trace.append(chunk, copy=False)
        si[ROWS] = 0
        current[0] = i = 1 - i
        if pending[i] is not None:
            pending[i].result()
            pending[i] = None
        columns[:] = [buffers[i][name] for name in CHUNK_DTYPE.names]

    if spec.mode == "paper":
        from dglsim.sim.paper import paper_probabilities

        cumulative = np.cumsum(paper_probabilities(spec))
        cumulative[-1] = 1.0  # as simulate_paper: no gap above the last module
        si[UNFINISHED] = k
        picks = np.zeros(0, np.int64)
        while True:
            status = _advance_paper(policy, k, steps, capacity, max_reuse, si, version, picks, send_bytes,
                                    items.id, items.version, items.birth, items.reuse, items.free, buf, b_head, b_len, gens, *columns)
            if status == DONE:
                break
            if status == CHUNK_FULL:
                seal()
            else:  # NEED_PICKS: the next block of the scheduler's draws, as simulate_paper draws them
                picks = np.searchsorted(cumulative, streams.scheduler.random(1024), side="right").astype(np.int64)
                si[PICK] = 0
        seal()
        t = float(si[T])
        return SimResult(spec, trace, version.tolist(), t, int(si[T]))

    compute = np.stack([streams.compute[j].take(steps) for j in range(k)])
    latency = np.stack([streams.latency[j].take(steps) for j in range(k - 1)]) if k > 1 else np.zeros((1, 1))
    arrivals = streams.arrival.take(steps) if streams.arrival is not None else np.zeros(1)
    rate = np.array([spec.link_rate(j) for j in range(k - 1)] or [math.inf])
    busy = np.zeros(k, np.bool_)
    held = np.full(k, -1, np.int64)
    in_transit, ncomp, nlat = np.zeros(k, np.int64), np.zeros(k, np.int64), np.zeros(max(k - 1, 1), np.int64)
    last_arrival, link_busy = np.zeros(max(k - 1, 1)), np.zeros(max(k - 1, 1))
    q_head, q_tail, q_len = np.full(k, -1, np.int64), np.full(k, -1, np.int64), np.zeros(k, np.int64)
    heap = [np.zeros(4 * k + 64), np.zeros(4 * k + 64, np.int64), np.zeros(4 * k + 64, np.int64)]
    # the engine's first events, in its order: the first arrival, then every worker's first try
    seed_events = ([(arrivals[0], EV_ARRIVAL, 0)] if streams.arrival is not None else []) + [(0.0, EV_TRY, j) for j in range(k)]
    for n, (t, kind, j) in enumerate(seed_events):
        heap[0][n], heap[1][n], heap[2][n] = t, n, (j << 2) | kind
    si[HEAP_N] = si[SEQ] = len(seed_events)
    order = np.lexsort((heap[1][: si[HEAP_N]], heap[0][: si[HEAP_N]]))  # sorted by (time, seq): a valid heap
    for column in heap:
        column[: si[HEAP_N]] = column[: si[HEAP_N]][order]
    while True:
        status = _advance_events(spec.mode == "sync", policy, k, steps, capacity, max_reuse, streams.arrival is not None, si,
                                 version, busy, held, in_transit, ncomp, nlat, last_arrival, link_busy,
                                 compute, latency, arrivals, send_bytes, rate, *heap,
                                 items.id, items.version, items.birth, items.reuse, items.next, items.free,
                                 q_head, q_tail, q_len, buf, b_head, b_len, gens, *columns)
        if status == DONE:
            break
        if status == CHUNK_FULL:
            seal()
        elif status == HEAP_FULL:
            heap = [np.concatenate([c, np.zeros_like(c)]) for c in heap]
        else:
            items, si[FREE_TOP] = items.grown(int(si[FREE_TOP]))
    seal()
    return SimResult(spec, trace, version.tolist(), last_row[0], int(si[EVENTS]))
