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
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch

from dglsim.data.loader import BatchLoader
from dglsim.errors import InvalidArgument
from dglsim.models.decoupled import DecoupledNet, eval_mode
from dglsim.sim import PipelineSpec, SimResult, simulate
from dglsim.sim.spec import payload_size
from dglsim.train.evaluate import evaluate
from dglsim.train.methods import TrainConfig
from dglsim.train.optim import set_lr
from dglsim.train.steps import local_step

__all__ = ["SimulatedRun", "train_simulated", "profile_modules", "batch_payload_bytes"]


@dataclass
class SimulatedRun:
    rows: list[dict]  # tidy evaluation rows {time, module, metric, value} (time: simulated s, or step in paper mode)
    updates: dict[str, np.ndarray]  # per update, in execution order: module, time, loss, lr, staleness, age, reuse
    result: SimResult  # the simulation: trace, updates per worker, makespan
    buffer_bytes: list[int]  # memory of each input buffer when full (0 for module 0)
    item_bytes: list[int]  # bytes of one item (activation + labels) sent by each module


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


def _batches(loader: BatchLoader) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    epoch = 0
    while True:  # module 0 may keep forwarding past its budget (paper mode)
        yield from loader.epoch(epoch)
        epoch += 1


def train_simulated(net: DecoupledNet, train: BatchLoader, test: BatchLoader, cfg: TrainConfig, spec: PipelineSpec,
                    *, eval_interval: float | None = None, progress: Callable[[int], None] | None = None) -> SimulatedRun:
    """Train `net` in place, its updates ordered by simulating `spec`.

    spec.steps must be cfg.epochs * len(train) (every module trains `epochs` of its own epochs).
    eval_interval: simulated seconds (paper mode: global steps) between evaluations of every
    module on `test`; the end of the run is always evaluated.
    """
    per_epoch = len(train)
    if spec.k != net.k:
        raise InvalidArgument(f"'workers' of the spec must equal the network's K = {net.k}, got {spec.k}")
    if spec.steps != cfg.epochs * per_epoch:
        raise InvalidArgument(f"'steps' of the spec must be epochs x batches per epoch = {cfg.epochs * per_epoch}, got {spec.steps}")
    optimizers = [cfg.optim.make(net.module_parameters(j)) for j in range(net.k)]
    done = [0] * net.k
    batches = _batches(train)
    log_module, log_loss, log_lr = [], [], []
    item_bytes = [0] * net.k

    def compute(j: int, item):
        x, y = next(batches) if j == 0 else item.payload
        lr = cfg.optim.lr_at(done[j] // per_epoch)
        set_lr(optimizers[j], lr)
        out, loss = local_step(net.stages[j], net.heads[j], optimizers[j], x, y)
        done[j] += 1
        log_module.append(j)
        log_loss.append(loss)
        log_lr.append(lr)
        item_bytes[j] = out.numel() * out.element_size() + y.numel() * y.element_size()
        if progress is not None:
            progress(1)
        return (out, y) if j < net.k - 1 else None

    def forward(j: int, item):
        x, y = next(batches) if j == 0 else item.payload
        with eval_mode(net.stages[j]), torch.no_grad():
            return (net.stages[j](x), y) if j < net.k - 1 else None

    rows: list[dict] = []

    def evaluate_now(t: float) -> None:
        scores = evaluate(net, test)
        epochs = [d / per_epoch for d in done]
        for metric, values in (("test_accuracy", scores["accuracy"]), ("ensemble_accuracy", scores["ensemble"])):
            rows.extend({"time": t, "module": j, "module_epoch": epochs[j], "metric": metric, "value": float(v)} for j, v in enumerate(values))

    result = simulate(spec, compute=compute, forward=forward, every=(eval_interval, evaluate_now) if eval_interval else None)
    if not rows or rows[-1]["time"] != result.makespan:  # the end of the run is always evaluated, once
        evaluate_now(result.makespan)

    trace = result.trace.to_array()
    starts = trace[trace["action"] == "start"]  # one per update, in the order the updates ran
    modules = np.asarray(log_module)
    if not np.array_equal(starts["worker"], modules):
        raise RuntimeError("the simulator's start events and the updates run are out of step")
    updates = {
        "module": modules, "time": starts["time"], "loss": torch.stack(log_loss).cpu().numpy() if log_loss else np.zeros(0),
        "lr": np.asarray(log_lr), "staleness": starts["staleness"], "age": starts["age"], "reuse": starts["reuse"],
    }
    capacity = spec.capacity or 0
    buffer_bytes = [0] + [capacity * item_bytes[j - 1] for j in range(1, net.k)]
    return SimulatedRun(rows, updates, result, buffer_bytes, item_bytes)
