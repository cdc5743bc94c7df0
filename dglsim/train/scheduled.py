"""Any scheduled method (`dglsim.schedule.methods`) trained with real PyTorch updates, in the order
its plan executes in simulated time.

`run_plan(work=...)` calls `ScheduledTraining.run(action)` at each action's start; this module
does the action's computation there. Messages are tensors kept by key: an action's output
(an activation, or the gradient of its input) is stored under its key, and the action that
needs it takes it. The plan's dependencies guarantee it is there (dglsim.schedule.execute).

The semantics of each action follow the plan's contract (dglsim.schedule.methods), with these
choices made explicit:
- Micro-batches are `torch.tensor_split` of the mini-batch; each micro-batch's loss is its mean
  cross-entropy times its share of the batch, so the accumulated gradient is the mini-batch's
  mean loss gradient; batch-norm normalizes each micro-batch by its own statistics (as GPipe).
- DDG's delayed backward goes through the graph of the forward that produced the output, with
  the weights of that forward: the forward runs on clones of the parameters (gradients flow to
  the parameters through the clone), so the updates made meanwhile do not touch it.
- Features replay's recomputation must not count a batch twice in batch-norm's running
  statistics: they are restored after the replay's forward (its normalization uses the batch).
- DNI/cDNI: each device has its own synthesizer and optimizer (same settings as the module's);
  the synthetic gradient is detached; the synthesizer's loss is the mean squared error to the
  true gradient, the gradient of the module's output that device j+1 computed in its own step.
- Greedy: module j's phase trains it alone, on modules 0..j-1 frozen in eval mode.
- Only the last module's head belongs to the backprop-style methods' network (gpipe, 1f1b, ddg,
  features_replay, dni, cdni): the other heads are neither trained nor reported.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dglsim.data.loader import BatchLoader
from dglsim.errors import InvalidArgument
from dglsim.models.decoupled import DecoupledNet, eval_mode
from dglsim.models.synthesizer import GradientSynthesizer
from dglsim.schedule import Action, ActionCosts, Plan, PlanResult, run_plan
from dglsim.train.evaluate import evaluate
from dglsim.train.methods import TrainConfig
from dglsim.train.optim import set_lr
from dglsim.train.steps import local_step

__all__ = ["ScheduledRun", "train_scheduled", "LOCAL_LOSS_METHODS", "make_synthesizers"]

LOCAL_LOSS_METHODS = ("dgl", "greedy")  # every module has a trained head; the others train the last head only


@dataclass
class ScheduledRun:
    rows: list[dict]  # tidy evaluation rows {time, module, metric, module_epoch, value}
    result: PlanResult
    losses: dict[int, list[float]]  # per device, the loss of each of its steps that has one


def make_synthesizers(net: DecoupledNet, *, conditioned: bool, seed: int) -> nn.ModuleList:
    """One synthesizer per boundary (modules 0..K-2), initialised from `seed` (the global torch
    RNG is untouched)."""
    shapes = net.output_shapes()
    param = next(net.parameters())
    with eval_mode(net), torch.no_grad():
        classes = net(torch.zeros((1, *net.input_shape), device=param.device, dtype=param.dtype)).shape[1]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        synths = nn.ModuleList(GradientSynthesizer(shapes[j], classes, conditioned=conditioned) for j in range(net.k - 1))
    return synths.to(param.device)


@contextmanager
def _running_stats_kept(module: nn.Module) -> Iterator[None]:
    """Batch-norm running statistics as they were before the block (a replayed forward is not a new batch)."""
    saved = {name: b.clone() for name, b in module.named_buffers()}
    try:
        yield
    finally:
        with torch.no_grad():
            for name, b in module.named_buffers():
                b.copy_(saved[name])


class ScheduledTraining:
    def __init__(self, plan: Plan, net: DecoupledNet, train: BatchLoader, cfg: TrainConfig, micro_batches: int, synthesizers: nn.ModuleList | None) -> None:
        self.plan, self.net, self.cfg, self.m = plan, net, cfg, micro_batches
        self.k, self.method = net.k, plan.method
        self.per_epoch = len(train)
        self.steps = plan_steps = max(a.step for d in plan.devices for a in d) + 1
        self.phase_steps = plan_steps // self.k if self.method == "greedy" else plan_steps
        self.train = train
        self.synths = synthesizers
        own = list(range(self.k)) if self.method in LOCAL_LOSS_METHODS else [self.k - 1]
        params = [list(net.stages[j].parameters()) + (list(net.heads[j].parameters()) if j in own else []) for j in range(self.k)]
        self.params = params
        self.optimizers: list[torch.optim.Optimizer | None] = [cfg.optim.make(p) for p in params]
        self.synth_optimizers = [cfg.optim.make(s.parameters()) for s in synthesizers] if synthesizers is not None else []
        self.updates = [0] * self.k
        self.lr_of = [cfg.optim.lr] * self.k
        self.current: tuple[int, tuple[torch.Tensor, torch.Tensor] | None] = (-1, None)
        self.stream: Iterator | None = None
        self.stream_phase = -1
        self.outputs: dict[tuple, tuple] = {}  # (device, step, micro) -> (activation, labels, batch samples) sent up
        self.grads: dict[tuple, torch.Tensor] = {}  # (device, step, micro) -> gradient of the device's input, sent down
        self.graphs: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}  # (device, step, micro) -> (input, output or loss)
        self.inputs: dict[tuple, torch.Tensor] = {}  # features replay: stored inputs
        self.kept: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}  # DNI: (output, labels) kept for the synthesizer update
        self.losses: dict[int, list[float]] = {j: [] for j in range(self.k)}
        self.dispatch: dict[str, Callable[[Action], None]] = {
            "forward": self._forward, "backward": self._backward, "update": self._update, "forward_only": self._forward_only,
            "replay": self._replay, "local": self._local, "dni_step": self._dni_step, "synth_update": self._synth_update,
        }

    # --- data and messages ------------------------------------------------------------
    def _batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Mini-batch `step`, drawn in order from the training data by device 0, which touches the
        steps in nondecreasing order (greedy: each phase reads the data afresh from its first
        epoch, as the sequential method does). Labels travel on with the activations."""
        if self.current[0] != step:
            phase = step // self.phase_steps
            if phase != self.stream_phase:
                self.stream, self.stream_phase = self.train.forever(), phase
            self.current = (step, next(self.stream))
        return self.current[1]

    def _input(self, a: Action, *, grad: bool) -> tuple[torch.Tensor, torch.Tensor, int]:
        """(input, labels, samples in the whole mini-batch) of action `a`: data on device 0, else
        what device j-1 sent for the same step and micro-batch."""
        if a.device == 0:
            x, y = self._batch(a.step)
            if self.m > 1:
                return x.tensor_split(self.m)[a.micro], y.tensor_split(self.m)[a.micro], len(y)
            return x, y, len(y)
        x, y, n = self.outputs.pop((a.device - 1, a.step, a.micro))
        return x.requires_grad_(grad), y, n

    def _send_up(self, a: Action, out: torch.Tensor, y: torch.Tensor, n: int) -> None:
        if a.device < self.k - 1:
            self.outputs[(a.device, a.step, a.micro)] = (out.detach(), y, n)

    # --- actions ------------------------------------------------------------------------
    def run(self, a: Action) -> None:
        self.dispatch[a.kind](a)

    def _loss(self, a: Action, out: torch.Tensor, y: torch.Tensor, n: int) -> torch.Tensor:
        """The last module's loss on a micro-batch, weighted by its share of the mini-batch."""
        loss = F.cross_entropy(self.net.heads[-1](out), y)
        self.losses[a.device].append(float(loss.detach()))
        return loss * (len(y) / n)

    def _forward(self, a: Action) -> None:
        j = a.device
        x, y, n = self._input(a, grad=j > 0)
        stage = self.net.stages[j]
        if self.method == "ddg":  # the delayed backward needs this forward's weights: run it on clones
            clones = {name: p.clone() for name, p in stage.named_parameters()}
            out = torch.func.functional_call(stage, clones, (x,))
        else:
            out = stage(x)
        self._send_up(a, out, y, n)
        self.graphs[(j, a.step, a.micro)] = (x, self._loss(a, out, y, n) if j == self.k - 1 else out)

    def _backward(self, a: Action) -> None:
        j = a.device
        x, out = self.graphs.pop((j, a.step, a.micro))
        if j == self.k - 1:
            out.backward()
        else:
            out.backward(self.grads.pop((j + 1, a.step, a.micro)))
        if j > 0:
            self.grads[(j, a.step, a.micro)] = x.grad.detach()

    def _set_lr(self, j: int, optimizer: torch.optim.Optimizer, params) -> torch.optim.Optimizer:
        lr = self.cfg.optim.lr_at(self.updates[j] // self.per_epoch)
        if self.cfg.optim.reset_on_decay and self.updates[j] > 0 and lr != self.lr_of[j]:
            optimizer = self.cfg.optim.make(params)
        self.lr_of[j] = lr
        set_lr(optimizer, lr)
        return optimizer

    def _update(self, a: Action) -> None:
        j = a.device
        self.optimizers[j] = opt = self._set_lr(j, self.optimizers[j], self.params[j])
        opt.step()
        opt.zero_grad(set_to_none=True)
        self.updates[j] += 1

    def _forward_only(self, a: Action) -> None:
        j = a.device
        x, y, n = self._input(a, grad=False)
        stage = self.net.stages[j]
        if self.method == "greedy":  # a frozen prefix module: eval mode, no gradients
            with eval_mode(stage), torch.no_grad():
                self._send_up(a, stage(x), y, n)
            return
        with torch.no_grad():
            self._send_up(a, stage(x), y, n)
        self.inputs[(j, a.step)] = x

    def _replay(self, a: Action) -> None:
        j = a.device
        x = self.inputs.pop((j, a.step)).requires_grad_(j > 0)
        stage = self.net.stages[j]
        with _running_stats_kept(stage):  # restored after the backward, which reads the buffers' versions
            stage(x).backward(self.grads.pop((j + 1, a.step, 0)))
        if j > 0:
            self.grads[(j, a.step, 0)] = x.grad.detach()

    def _local(self, a: Action) -> None:
        j = a.device
        x, y, n = self._input(a, grad=False)
        self.optimizers[j] = opt = self._set_lr(j, self.optimizers[j], self.params[j])
        out, loss = local_step(self.net.stages[j], self.net.heads[j], opt, x, y)
        self.updates[j] += 1
        self.losses[j].append(float(loss))
        self._send_up(a, out, y, n)

    def _dni_step(self, a: Action) -> None:
        j = a.device
        x, y, n = self._input(a, grad=j > 0)
        h = self.net.stages[j](x)
        if j == self.k - 1:
            self._loss(a, h, y, n).backward()
        else:
            synth = self.synths[j]
            with torch.no_grad():
                synthetic = synth(h.detach(), y)
            h.backward(synthetic)
            self.kept[(j, a.step)] = (h.detach(), y)
            self._send_up(a, h, y, n)
        if j > 0:
            self.grads[(j, a.step, 0)] = x.grad.detach()
        self._update(a)

    def _synth_update(self, a: Action) -> None:
        j = a.device
        (h, y), target = self.kept.pop((j, a.step)), self.grads.pop((j + 1, a.step, 0))
        opt = self.synth_optimizers[j]
        set_lr(opt, self.lr_of[j])
        loss = F.mse_loss(self.synths[j](h, y), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def train_scheduled(plan: Plan, costs: ActionCosts, net: DecoupledNet, train: BatchLoader, test: BatchLoader, cfg: TrainConfig, *,
                    micro_batches: int = 1, seed: int = 0, eval_interval: float | None = None,
                    progress: Callable[[int], None] | None = None) -> ScheduledRun:
    """Train `net` in place by `plan`, its actions executed in simulated time under `costs`.

    The plan must run cfg.epochs epochs of `train` (steps = epochs x batches per epoch; greedy:
    that many per module). eval_interval: simulated seconds between evaluations; the end of the
    run is always evaluated. progress(1) is called at each update."""
    per_epoch = len(train)
    steps = max(a.step for d in plan.devices for a in d) + 1
    expected = cfg.epochs * per_epoch * (net.k if plan.method == "greedy" else 1)
    if plan.k != net.k:
        raise InvalidArgument(f"the plan's devices must equal the network's K = {net.k}, got {plan.k}")
    if steps != expected:
        raise InvalidArgument(f"the plan's steps must be epochs x batches per epoch{' x K' if plan.method == 'greedy' else ''} = {expected}, got {steps}")
    if plan.batch != train.batch_size:
        raise InvalidArgument(f"the plan's batch must be the loader's batch size {train.batch_size}, got {plan.batch}")
    synths = make_synthesizers(net, conditioned=plan.method == "cdni", seed=seed) if plan.method in ("dni", "cdni") else None
    training = ScheduledTraining(plan, net, train, cfg, micro_batches, synths)
    net.train()
    if synths is not None:
        synths.train()
    modules = list(range(net.k)) if plan.method in LOCAL_LOSS_METHODS else [net.k - 1]
    rows: list[dict] = []
    counted = {"update", "local", "dni_step"}

    def work(a: Action) -> None:
        training.run(a)
        if progress is not None and a.kind in counted:
            progress(1)

    def evaluate_now(t: float) -> None:
        scores = evaluate(net, test, modules=modules, ensemble=cfg.ensemble)
        epochs = [u / per_epoch for u in training.updates]
        for metric, values in (("test_accuracy", scores["accuracy"]), ("ensemble_accuracy", scores["ensemble"])):
            rows.extend({"time": t, "module": j, "metric": metric, "module_epoch": epochs[j], "value": float(v)} for j, v in zip(modules, values))

    result = run_plan(plan, costs, seed=seed, work=work, every=(eval_interval, evaluate_now) if eval_interval else None)
    if not rows or rows[-1]["time"] != result.makespan:
        evaluate_now(result.makespan)
    return ScheduledRun(rows, result, training.losses)


def update_counts(result: PlanResult) -> np.ndarray:
    """Updates each device made (update, local and DNI steps)."""
    kinds = result.actions["kind"]
    mask = np.isin(kinds, ["update", "local", "dni_step"])
    return np.bincount(result.actions["device"][mask], minlength=result.plan.k)
