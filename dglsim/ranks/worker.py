"""One rank of real multi-process DGL: rank j owns module j (its stage, head and optimizer).

Rank 0 reads the training data; each rank sends its detached output and the labels to rank
j+1 with non-blocking sends. A receiver thread on rank j > 0 takes rank j-1's messages as they
come (so transfers overlap compute) and puts them in the rank's inbox:
- sync: a FIFO queue of at most `in_flight` items, each item processed once and in order; the
  producer also keeps at most `in_flight` sends outstanding, so a slow consumer holds it back;
- async: a replay buffer of `cfg.buffer` items with the simulator's sampling policy; the
  training loop takes an item whenever one is there and never waits otherwise. As in the
  simulator, a module whose producer has stopped and whose buffer holds no item it may still
  use (`max_reuse`) stops short of its budget; the results say how many updates it made.

Every rank records its events in the simulator's trace format with real timestamps (seconds
since a start time rank 0 broadcasts; ranks on one machine share its clock). Staleness is
counted from versions, never from clocks: at the start of an update, the newest producer version
that has reached the rank minus the version of the item it trains on. At the end, every rank's
module, updates and trace go to the last rank, which evaluates the whole network on the test set
and writes the results, the merged trace and the final parameters; a rank that stops early
keeps its partial trace (dglsim.ranks.lifeline).

Injected delays: each step of rank j is stretched to (its measured time) x max(1, a draw of the
run's delay family with mean 1 x the slowdown on the slowed rank), by sleeping: sleep can
lengthen a step, never shorten it (dglsim.ranks.calibrate models the same).
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from dglsim.buffers import Item, ReplayBuffer
from dglsim.models import build_network
from dglsim.quant import Codec
from dglsim.ranks.lifeline import Lifeline, trace_path, write_trace
from dglsim.ranks.wire import DATA, STOP, EncodedLink, Layout, Message, send, silent_producer, wait_sent
from dglsim.recipe.cluster import compute_model, slowdowns
from dglsim.recipe.codecs import link_codecs
from dglsim.recipe.config import RunConfig
from dglsim.recipe.data import run_data, test_loader, train_loader
from dglsim.recipe.provenance import provenance
from dglsim.recipe.rows import loss_rows, stopped_short, updates_rows
from dglsim.recipe.streams import inbox_rng, injected_delay_rng, item_id
from dglsim.sim.trace import Trace
from dglsim.train.evaluate import evaluate
from dglsim.train.optim import set_lr
from dglsim.train.steps import local_step

__all__ = ["RankOptions", "run_rank", "FAULT_ENV"]

FAULT_ENV = "DGLSIM_RANK_FAULT"  # "RANK:UPDATE:crash" or "RANK:UPDATE:hang": fault injection for failure tests


@dataclass(frozen=True)
class RankOptions:
    out: Path
    in_flight: int = 2  # sync: items in flight between two ranks
    timeout_s: float = 60.0  # a peer silent for this long has failed
    progress: bool = False


def _fault(rank: int) -> tuple[int, str] | None:
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return None
    r, update, kind = spec.split(":")
    return (int(update), kind) if int(r) == rank else None


@dataclass(frozen=True)
class Taken:
    msg: Message
    reuse: int  # times the item has been trained on, this time included
    occupancy: int  # items left in the inbox
    staleness: int  # the newest producer version received minus the item's
    time: float  # when it was taken: the update's start


class _Inbox:
    """What rank j-1 sent, filled by a receiver thread: a FIFO queue (sync) or a replay buffer (async)."""

    def __init__(self, cfg: RunConfig, link: Layout | EncodedLink, opts: RankOptions, rank: int, clock, record) -> None:
        self.link, self.opts, self.rank, self.clock, self.record = link, opts, rank, clock, record
        self.sync = cfg.pipeline == "sync"
        self.fifo: queue.Queue = queue.Queue(maxsize=opts.in_flight)
        self.buffer = ReplayBuffer(cfg.buffer, cfg.policy, max_reuse=cfg.max_reuse)
        self.cond = threading.Condition()
        self.rng = inbox_rng(cfg, rank)
        self.error: BaseException | None = None
        self.done = False
        self.newest = 0  # the newest producer version received
        self.thread = threading.Thread(target=self._receive, name=f"rank{rank}-receiver", daemon=True)
        self.thread.start()

    def _receive(self) -> None:
        try:
            while True:
                msg = self.link.receive(self.rank - 1, self.opts.timeout_s, me=self.rank)
                if msg.kind == STOP:
                    break
                if self.sync:  # arrival is when the message is here, before the queue may hold it back
                    with self.cond:  # one step with the newest version: a start sees both or neither
                        self.newest = max(self.newest, msg.version)
                        self.record(self.clock(), "arrive", msg.item, msg.version, 0, self.fifo.qsize() + 1)
                    self.fifo.put(msg)
                    continue
                with self.cond:
                    self.newest = max(self.newest, msg.version)
                    evicted = self.buffer.put(Item(msg.item, msg.version, msg.birth, msg))
                    now = self.clock()
                    self.record(now, "arrive", msg.item, msg.version, 0, len(self.buffer))
                    if evicted is not None:
                        self.record(now, "evict", evicted.id, evicted.version, evicted.reuse, len(self.buffer))
                    self.cond.notify()
        except BaseException as exc:  # handed to the training thread, which raises it
            self.error = exc
        finally:
            with self.cond:
                self.done = True
                self.cond.notify()
            if self.sync:  # the consumer drains the queue, so there will be room for the end mark
                self.fifo.put(None)

    def take(self) -> Taken | None:
        """The next item to train on, when it was taken and what the inbox held then; None when
        the producer has stopped and no item is left to use (async with max_reuse)."""
        if self.sync:
            try:
                msg = self.fifo.get(timeout=self.opts.timeout_s)
            except queue.Empty:
                raise silent_producer(self.rank, self.rank - 1, self.opts.timeout_s) from None
            if msg is None:
                raise self.error or RuntimeError(f"rank {self.rank}: rank {self.rank - 1} stopped sending before the last item")
            with self.cond:
                return Taken(msg, 1, self.fifo.qsize(), self.newest - msg.version, self.clock())
        with self.cond:
            deadline = time.monotonic() + self.opts.timeout_s
            while not len(self.buffer):
                if self.done:
                    if self.error is not None:
                        raise self.error
                    return None
                if not self.cond.wait(timeout=max(0.0, deadline - time.monotonic())):
                    raise silent_producer(self.rank, self.rank - 1, self.opts.timeout_s)
            item = self.buffer.take(self.rng)
            return Taken(item.payload, item.reuse, len(self.buffer), self.newest - item.version, self.clock())

    def close(self) -> None:
        """Wait for the producer's stop message (async: the producer may still be sending)."""
        self.thread.join(timeout=self.opts.timeout_s)
        if self.thread.is_alive():
            raise silent_producer(self.rank, self.rank - 1, self.opts.timeout_s, "its stop message never came")
        if self.error is not None:
            raise self.error


def _link(codecs: list[Codec] | None, j: int, shape: tuple[int, ...]) -> Layout | EncodedLink:
    """Link j (rank j to rank j+1): float messages of `shape`, or encoded by link j's codec."""
    return Layout(shape) if codecs is None else EncodedLink(codecs[j])


def run_rank(cfg: RunConfig, opts: RankOptions, lifeline: Lifeline) -> None:
    """Train module dist.get_rank() of `cfg`'s network in a process group of K ranks; the
    lifeline keeps the rows recorded so far if the rank has to stop early."""
    rank, world = dist.get_rank(), dist.get_world_size()
    if world != cfg.k:
        raise RuntimeError(f"rank {rank}: the process group has {world} ranks, the network K = {cfg.k} modules (launch K ranks)")
    start_wall = time.perf_counter()
    net = build_network(cfg.network_spec(), seed=cfg.seed)  # every rank builds the same initial network
    stage, head = net.stages[rank], net.heads[rank]
    tcfg = cfg.train_config()
    optimizer = tcfg.optim.make(net.module_parameters(rank))
    shapes = net.output_shapes()
    b = tcfg.batch_size
    codecs = link_codecs(cfg)
    inbound = _link(codecs, rank - 1, (b, *shapes[rank - 1])) if rank > 0 else None
    outbound = _link(codecs, rank, (b, *shapes[rank])) if rank < world - 1 else None

    batches = None
    per_epoch = torch.zeros(1, dtype=torch.int64)
    if rank == 0:
        train_set, _ = run_data(cfg)
        loader = train_loader(cfg, train_set)
        per_epoch[0] = len(loader)
        batches = loader.forever()
    dist.broadcast(per_epoch, 0)
    per_epoch = int(per_epoch[0])
    budget = tcfg.epochs * per_epoch
    origin = torch.tensor([time.time()], dtype=torch.float64)
    dist.barrier()
    dist.broadcast(origin, 0)
    t0 = float(origin[0])

    def clock() -> float:
        return time.time() - t0

    rows: list[tuple] = []
    lifeline.keep(rows)

    def record(t: float, action: str, item: int, version: int, reuse: int, occupancy: int, nbytes: int = 0, age: float = 0.0, staleness: int = 0) -> None:
        rows.append((t, rank, action, item, version, staleness, age, reuse, occupancy, nbytes))

    updates = {"time": [], "loss": [], "lr": [], "version": [], "item": [], "compute_s": []}
    delay = compute_model(cfg, 1.0)
    slowdown = slowdowns(cfg)[rank]
    delay_rng = injected_delay_rng(cfg, rank)
    fault = _fault(rank)
    inbox = _Inbox(cfg, inbound, opts, rank, clock, record) if rank > 0 else None
    pending: list[tuple[dist.Work, torch.Tensor]] = []
    bar = None
    if opts.progress and rank == world - 1:
        from tqdm import tqdm

        bar = tqdm(total=budget, desc=f"rank {rank} updates", unit="step")
    made = budget  # updates made: fewer when the inbox runs dry (async with max_reuse)
    try:
        for n in range(budget):
            # An update spans everything the rank does for it (rank 0: reading and augmenting the
            # batch; every rank: the step, injected delay, packing and handing the output to the
            # transport), so that only waiting (for an item, or for room in flight) lies between
            # updates: calibration reads the simulator's compute times off these spans.
            if rank == 0:
                began = clock()
                x, y = next(batches)
                item, version, birth, reuse, occupancy, staleness = -1, 0, began, 1, 0, 0
            else:
                taken = inbox.take()
                if taken is None:  # the producer stopped and nothing is left to reuse
                    made = n
                    break
                msg, reuse, occupancy, staleness, began = taken.msg, taken.reuse, taken.occupancy, taken.staleness, taken.time
                x, y, item, version, birth = inbound.decode(msg.x), msg.y, msg.item, msg.version, msg.birth
            record(began, "start", item, version, reuse, occupancy, age=max(0.0, began - birth), staleness=staleness)
            lr = tcfg.optim.lr_at(n // per_epoch)
            set_lr(optimizer, lr)
            tic = time.perf_counter()
            out, loss = local_step(stage, head, optimizer, x, y)
            compute = time.perf_counter() - tic
            if fault is not None and fault[0] == n:
                if fault[1] == "hang":  # said first, so a test can act on a rank known to be hanging
                    os.write(2, f"rank {rank}: hanging at update {n} ({FAULT_ENV})\n".encode())
                    time.sleep(10**6)
                raise RuntimeError(f"rank {rank}: injected crash at update {n} ({FAULT_ENV})")
            target = compute * float(delay.sample(delay_rng, 1)[0]) * slowdown
            if target > compute:
                time.sleep(target - compute)
            for name, value in (("time", began), ("loss", float(loss)), ("lr", lr), ("version", version), ("item", item), ("compute_s", compute)):
                updates[name].append(value)
            if outbound is None:
                record(clock(), "finish", item, n + 1, 0, 0)
            else:
                out_id = item_id(rank, n)
                parts = outbound.pack(DATA, out_id, n + 1, clock(), out, y)
                done = clock()  # before the transport has it: its arrival is never earlier
                pending += [(send(part, rank + 1, me=rank), part) for part in parts]
                record(done, "finish", item, n + 1, 0, 0)
                record(done, "send", out_id, n + 1, 0, 0, nbytes=sum(part.numel() for part in parts))
                _settle(pending, opts.in_flight if cfg.pipeline == "sync" else opts.in_flight + cfg.buffer, rank, opts, record, clock)
            if bar is not None:
                bar.update(1)
        if outbound is not None:
            pending += [(send(part, rank + 1, me=rank), part) for part in outbound.pack(STOP, -1, -1, 0.0, None, None)]
            _settle(pending, 0, rank, opts, record, clock)
        if inbox is not None:
            inbox.close()
    finally:
        if bar is not None:
            bar.close()
    write_trace(trace_path(opts.out, rank), rows)
    mine = {"rank": rank, "state": {"stage": stage.state_dict(), "head": head.state_dict()}, "updates": updates, "trace": rows,
            "wall_s": time.perf_counter() - start_wall, "planned": budget, "made": made}
    gathered = [None] * world if rank == world - 1 else None
    dist.gather_object(mine, gathered, dst=world - 1)
    if rank == world - 1:
        _finish(cfg, net, gathered, opts, per_epoch)


def _settle(pending: list, limit: int, rank: int, opts: RankOptions, record, clock) -> None:
    """Forget sends that have left; wait for the oldest while more than `limit` are outstanding."""
    while pending and pending[0][0].is_completed():
        pending.pop(0)
    if len(pending) > limit:
        record(clock(), "block", -1, 0, 0, len(pending))
        while len(pending) > limit:
            wait_sent(pending.pop(0)[0], rank + 1, opts.timeout_s, me=rank)
        record(clock(), "unblock", -1, 0, 0, len(pending))


def merge_traces(per_rank: list[list[tuple]]) -> Trace:
    """One trace of all ranks, in time order."""
    return Trace(sorted((r for ranks in per_rank for r in ranks), key=lambda r: (r[0], r[1])))


def _finish(cfg: RunConfig, net, gathered: list[dict], opts: RankOptions, per_epoch: int) -> None:
    """On the last rank: assemble the trained network, evaluate it, write the results."""
    for part in gathered:
        net.stages[part["rank"]].load_state_dict(part["state"]["stage"])
        net.heads[part["rank"]].load_state_dict(part["state"]["head"])
    _, test_set = run_data(cfg)
    scores = evaluate(net, test_loader(test_set))
    trace = merge_traces([p["trace"] for p in gathered])
    makespan = max(r[0] for r in trace.rows) if trace.rows else 0.0
    # Quantized runs are evaluated on float activations here (the codecs live on the producing
    # ranks), which a simulated run reports as unquantized_*.
    prefix = "unquantized_" if cfg.quant != "none" else ""
    rows = [{"module": j, "metric": prefix + m, "value": float(v)} for m, key in (("test_accuracy", "accuracy"), ("ensemble_accuracy", "ensemble"))
            for j, v in enumerate(scores[key])]
    rows += loss_rows({p["rank"]: p["updates"]["loss"] for p in sorted(gathered, key=lambda p: p["rank"])}, per_epoch)
    rows.append({"metric": "makespan", "value": makespan})
    ranks = sorted(gathered, key=lambda p: p["rank"])
    rows += updates_rows([p["made"] for p in ranks], ranks[0]["planned"])
    for j, n in stopped_short(rows).items():
        print(f"note: rank {j} stopped after {n} of its {ranks[0]['planned']} updates: max_reuse left nothing to train on after its producer finished", flush=True)
    results = {"config": cfg.as_dict(), "rows": rows, "provenance": provenance(torch.device("cpu")) | {"world_size": len(gathered), "backend": dist.get_backend()},
               "updates": {p["rank"]: p["updates"] for p in gathered}, "wall_s": max(p["wall_s"] for p in gathered)}
    opts.out.mkdir(parents=True, exist_ok=True)
    trace.to_csv(opts.out / "trace.csv")
    torch.save(net.state_dict(), opts.out / "state.pt")
    tmp = opts.out / "results.json.tmp"
    tmp.write_text(json.dumps(results, default=float))
    tmp.replace(opts.out / "results.json")  # written whole or not at all
    print(f"rank {len(gathered) - 1}: trained in {makespan:.2f} s; {prefix}test accuracy per module " + ", ".join(f"{a:.3f}" for a in scores["accuracy"])
          + f"; wrote {opts.out}", flush=True)
