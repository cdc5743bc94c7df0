"""DGL training in simulated time: the pipeline simulator decides the order of the real updates.

`train_simulated` runs `dglsim.sim.simulate` with a `compute` callback that performs the real
local step of module j on the item the simulator chose (module 0 takes the next mini-batch of
the training data; module j > 0 takes the detached output and labels its predecessor sent) and
returns the detached output and labels as the item's payload. One run thus yields accuracy,
staleness and simulated wall-clock together.

Each module counts its own epochs (its updates / batches per epoch) and follows the learning
rate schedule of those epochs, as in the authors' asynchronous experiment. In `paper` mode a
module past its budget keeps forwarding: its stage runs in eval mode without gradients and
its output is sent on.

With `codecs` (one per link), what a module sends is its encoded output (`dglsim.quant`): the
consumer decodes it before its step, buffers hold the encoded items, and link times use each
item's real encoded size, codebook messages included.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Callable, Iterator, NamedTuple

import numpy as np
import torch

from dglsim.data.loader import BatchLoader
from dglsim.errors import InvalidArgument
from dglsim.models.decoupled import DecoupledNet, eval_mode
from dglsim.quant import Codec, Encoded, link_measurements
from dglsim.sim import PipelineSpec, SimResult, simulate
from dglsim.sim.metrics import buffer_peak
from dglsim.sim.spec import payload_size
from dglsim.train.evaluate import evaluate
from dglsim.train.methods import TrainConfig
from dglsim.train.optim import set_lr
from dglsim.train.steps import local_step

__all__ = ["SimulatedRun", "train_simulated", "profile_modules", "batch_payload_bytes"]


class Sent(NamedTuple):
    """One item a module sent: bytes of its activation part (float or codes and grid), of its
    labels, of the codebook message it carries; the codebook version; its float32 size."""

    activation: int
    labels: int
    message: int
    version: int
    floats: int

    @property
    def wire(self) -> int:
        return self.activation + self.labels + self.message


@dataclass
class SimulatedRun:
    rows: list[dict]  # tidy evaluation rows {time, module, metric, value} (time: simulated s, or step in paper mode)
    updates: dict[str, np.ndarray]  # per update, in execution order: module, time, loss, lr, version (of the producer the item came from), staleness, age, reuse
    result: SimResult  # the simulation: trace, updates per worker, makespan
    buffer_bytes: list[int]  # peak memory of each input queue or buffer: items + labels + codebooks held (0 for module 0)
    item_bytes: list[int]  # bytes of the last item (activation or codes, plus labels) sent by each module
    links: list[dict]  # per link: items sent, bytes, bits per value, compression against float32


def batch_payload_bytes(net: DecoupledNet, batch_size: int) -> list[int]:
    """Bytes of the item each module sends: its float32 output for a batch, plus int64 labels."""
    labels = payload_size((batch_size,), "int64", where="labels")
    return [payload_size((batch_size, *shape), "float32", where=f"module {j} output") + labels for j, shape in enumerate(net.output_shapes())]


def profile_modules(net: DecoupledNet, batch_size: int, *, repeats: int = 5, warmup: int = 2) -> list[float]:
    """Median seconds of one local step (forward, head, loss, backward, update) of each module on
    the device `net` lives on, timed on a copy of `net` with random inputs of the right shapes."""
    probe = copy.deepcopy(net)
    device = next(probe.parameters()).device
    shapes = [probe.input_shape, *probe.output_shapes()[:-1]]
    y = torch.zeros(batch_size, dtype=torch.long, device=device)
    seconds = []
    for j, shape in enumerate(shapes):
        x = torch.randn(batch_size, *shape, device=device)
        opt = torch.optim.SGD(probe.module_parameters(j), lr=1e-3)
        times = []
        for i in range(warmup + repeats):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            local_step(probe.stages[j], probe.heads[j], opt, x, y)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if i >= warmup:
                times.append(time.perf_counter() - start)
        seconds.append(float(np.median(times)))
    return seconds


def train_simulated(net: DecoupledNet, train: BatchLoader, test: BatchLoader, cfg: TrainConfig, spec: PipelineSpec,
                    *, eval_interval: float | None = None, progress: Callable[[int], None] | None = None,
                    codecs: list[Codec] | None = None, observe: Callable[[float, list[int]], None] | None = None) -> SimulatedRun:
    """Train `net` in place, its updates ordered by simulating `spec`.

    spec.steps must be cfg.epochs * len(train) (every module trains `epochs` of its own epochs).
    eval_interval: simulated seconds (paper mode: global steps) between evaluations of every
    module on `test`; the end of the run is always evaluated.
    codecs: one per link (K-1); each evaluation then also measures every link on a probe batch.
    observe(time, updates done per module) is called after each evaluation (snapshots hook here).
    """
    per_epoch = len(train)
    if spec.k != net.k:
        raise InvalidArgument(f"'workers' of the spec must equal the network's K = {net.k}, got {spec.k}")
    if spec.steps != cfg.epochs * per_epoch:
        raise InvalidArgument(f"'steps' of the spec must be epochs x batches per epoch = {cfg.epochs * per_epoch}, got {spec.steps}")
    if spec.replicas is not None and max(spec.replicas) > train.batch_size:
        raise InvalidArgument(f"'replicas' of the spec must be at most the batch size {train.batch_size} (one shard of the batch per replica), got {list(spec.replicas)}")
    if codecs is not None and len(codecs) != net.k - 1:
        raise InvalidArgument(f"'codecs' of train_simulated must be one per link (K-1 = {net.k - 1}), got {len(codecs)}")
    optimizers = [cfg.optim.make(net.module_parameters(j)) for j in range(net.k)]
    done = [0] * net.k
    batches = train.forever()
    log_module, log_loss, log_lr = [], [], []
    log_lr_of = [cfg.optim.lr] * net.k  # each module's learning rate at its last update
    sent: list[list[Sent]] = [[] for _ in range(net.k - 1)]  # per link, per item in send order

    def receive(j: int, item):
        if j == 0:
            return next(batches)
        x, y = item.payload
        return (codecs[j - 1].decode(x) if codecs else x), y

    def send(j: int, out: torch.Tensor, y: torch.Tensor):
        if j == net.k - 1:
            return None
        return (codecs[j].encode(out) if codecs else out), y

    def size(j: int, payload) -> int:
        x, y = payload
        labels = y.numel() * y.element_size()
        if isinstance(x, Encoded):
            item = Sent(x.payload_bytes, labels, x.message_bytes, x.version, x.float32_bytes)
        else:
            item = Sent(x.numel() * x.element_size(), labels, 0, 0, x.numel() * 4)
        sent[j].append(item)
        return item.wire

    def compute(j: int, item):
        x, y = receive(j, item)
        lr = cfg.optim.lr_at(done[j] // per_epoch)
        if cfg.optim.reset_on_decay and done[j] > 0 and lr != log_lr_of[j]:
            optimizers[j] = cfg.optim.make(net.module_parameters(j))  # momentum starts afresh at each decay
        log_lr_of[j] = lr
        set_lr(optimizers[j], lr)
        out, loss = local_step(net.stages[j], net.heads[j], optimizers[j], x, y, spec.replicas_of(j))
        done[j] += 1
        log_module.append(j)
        log_loss.append(loss)
        log_lr.append(lr)
        if progress is not None:
            progress(1)
        return send(j, out, y)

    def forward(j: int, item):
        x, y = receive(j, item)
        with eval_mode(net.stages[j]), torch.no_grad():
            return send(j, net.stages[j](x), y)

    rows: list[dict] = []
    probe = next(iter(test.epoch(0))) if codecs else None

    # With codecs the network is evaluated as it trains, through its quantized links (probe
    # encodes: they teach the codebooks nothing); "unquantized_*" shows the same weights fed
    # float activations.
    links = [lambda x, c=c: c.decode(c.probe(x)) for c in codecs] if codecs else None

    def evaluate_now(t: float) -> None:
        epochs = [d / per_epoch for d in done]
        passes = [("", links)] + ([("unquantized_", None)] if codecs else [])
        if codecs and any(c.encodes == 0 for c in codecs):  # a link that has sent nothing has no codebook yet
            passes = passes[1:]
        for prefix, through in passes:
            scores = evaluate(net, test, links=through, ensemble=cfg.ensemble)
            for metric, values in (("test_accuracy", scores["accuracy"]), ("ensemble_accuracy", scores["ensemble"])):
                rows.extend({"time": t, "module": j, "metric": prefix + metric, "module_epoch": epochs[j], "value": float(v)} for j, v in enumerate(values))
        if codecs:
            rows.extend({"time": t, "link": j, "metric": name, "value": value} for j, name, value in _probe_links(net, codecs, probe))
        if observe is not None:
            observe(t, list(done))

    period = (eval_interval, evaluate_now) if eval_interval else None
    result = simulate(spec, compute=compute, forward=forward, size=size, **{"every_steps" if spec.mode == "paper" else "every": period})
    if not rows or rows[-1]["time"] != result.makespan:  # the end of the run is always evaluated, once
        evaluate_now(result.makespan)
    rows.sort(key=lambda r: r["time"])

    trace = result.trace.to_array()
    starts = trace[trace["action"] == "start"]  # one per update, in the order the updates ran
    modules = np.asarray(log_module)
    if not np.array_equal(starts["worker"], modules):
        raise RuntimeError("the simulator's start events and the updates run are out of step")
    updates = {
        "module": modules, "time": starts["time"], "loss": torch.stack(log_loss).cpu().numpy() if log_loss else np.zeros(0),
        "lr": np.asarray(log_lr), "version": starts["version"], "staleness": starts["staleness"], "age": starts["age"], "reuse": starts["reuse"],
    }
    buffer_bytes = [0] + [_peak_buffer_bytes(result, trace, j, sent[j - 1], codecs[j - 1] if codecs else None) for j in range(1, net.k)]
    item_bytes = [sent[j][-1].wire if sent[j] else 0 for j in range(net.k - 1)] + [0]
    links = [_link_summary(j, sent[j]) for j in range(net.k - 1)]
    return SimulatedRun(rows, updates, result, buffer_bytes, item_bytes, links)


def _probe_links(net: DecoupledNet, codecs: list[Codec], probe: tuple[torch.Tensor, torch.Tensor]) -> Iterator[tuple[int, str, float]]:
    """Every link measured on the probe batch: module j's eval-mode output through codec j."""
    x, y = probe
    for j, codec in enumerate(codecs):
        with eval_mode(net.stages[j]), torch.no_grad():
            x = net.stages[j](x)
        if codec.encodes == 0:  # nothing sent on this link yet
            continue
        for name, value in link_measurements(codec, x, y, (net.stages[j + 1], net.heads[j + 1])).items():
            yield j, name, value


def _peak_buffer_bytes(result: SimResult, trace: np.ndarray, consumer: int, sent: list[Sent], codec: Codec | None) -> int:
    """Peak bytes held by `consumer`'s queue or buffer: its items (activations or codes, and
    labels) plus one copy of each codebook version the held items refer to."""
    ids = trace["item"][(trace["action"] == "send") & (trace["worker"] == consumer - 1)]
    held_bytes = {int(i): (item.activation + item.labels, item.version) for i, item in zip(ids, sent)}
    book = codec.codebook_bytes() if codec is not None else 0

    def weigh(held: set[int]) -> int:
        return sum(held_bytes[i][0] for i in held) + book * len({held_bytes[i][1] for i in held})

    spec = result.spec
    return buffer_peak(result.trace, consumer, removes_on_start=spec.mode == "sync", max_reuse=spec.max_reuse, weigh=weigh)


def _link_summary(j: int, sent: list[Sent]) -> dict:
    """What link j carried. bits_per_value and compression count the activation part (codes,
    scalar grid and codebook messages), not the labels, which every method sends alike."""
    items = len(sent)
    if not items:
        return {"link": j, "items": 0}
    activation = sum(s.activation + s.message for s in sent)
    floats = sum(s.floats for s in sent)
    return {
        "link": j, "items": items, "wire_bytes": sum(s.wire for s in sent), "codebook_bytes": sum(s.message for s in sent),
        "activation_bytes": activation, "float32_bytes": floats,
        "bits_per_item": 8 * activation / items, "bits_per_value": 32 * activation / floats, "compression": floats / activation,
    }
