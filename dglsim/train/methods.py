"""The three training methods compared in the paper, on one decoupled network.

- "dgl":      synchronous DGL; every module trains on every mini-batch with its local loss.
- "greedy":   sequential greedy; module j trains for all epochs on the outputs of modules
              0..j-1, which are frozen and in eval mode (Belilovsky et al. 2019).
- "backprop": end-to-end backprop through all modules and the last head.

Each returns tidy rows {epoch, module, metric, value}: per-module test accuracy and the
ensemble accuracy after every `eval_every` epochs, and the mean training loss of each epoch.
For "greedy", `epoch` counts module j's own epochs; for "backprop" only the last module's
head is trained, so only it is reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, ClassVar

import torch

from dglsim.constraints import Constraint, int_at_least, one_of, validate_fields
from dglsim.data.loader import BatchLoader
from dglsim.models.decoupled import DecoupledNet
from dglsim.train.checkpoint import EpochCheckpoint
from dglsim.train.evaluate import ENSEMBLES, evaluate
from dglsim.train.optim import OptimConfig, set_lr
from dglsim.train.steps import backprop_step, dgl_step, local_step

__all__ = ["TrainConfig", "METHODS", "train", "total_steps"]

Progress = Callable[[int], None]


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 50
    batch_size: int = 128
    eval_every: int = 1  # epochs between evaluations; the last epoch is always evaluated
    optim: OptimConfig = field(default_factory=OptimConfig)
    ensemble: str = "softmax"  # how the ensemble of heads combines them (dglsim.train.evaluate)

    CONSTRAINTS: ClassVar[dict[str, Constraint]] = {
        "epochs": int_at_least(1),
        "batch_size": int_at_least(1),
        "eval_every": int_at_least(1),
        "ensemble": one_of(ENSEMBLES),
    }

    def __post_init__(self) -> None:
        validate_fields(self, self.CONSTRAINTS)

    def evaluates_after(self, epoch: int) -> bool:
        return (epoch + 1) % self.eval_every == 0 or epoch + 1 == self.epochs


def _rows(epoch: int, modules: list[int], metric: str, values: list[float]) -> list[dict]:
    return [{"epoch": epoch + 1, "module": j, "metric": metric, "value": float(v)} for j, v in zip(modules, values)]


def _eval_rows(net: DecoupledNet, test: BatchLoader, epoch: int, modules: list[int], ensemble: str = "softmax") -> list[dict]:
    scores = evaluate(net, test, modules=modules, ensemble=ensemble)
    return _rows(epoch, modules, "test_accuracy", scores["accuracy"]) + _rows(epoch, modules, "ensemble_accuracy", scores["ensemble"])


def _resume(checkpoint: EpochCheckpoint | None, net: DecoupledNet, optimizers: list[torch.optim.Optimizer]) -> tuple[int, list[dict]]:
    """(epochs already done, their rows) from `checkpoint`, with the network and the optimizers
    restored to their state after those epochs; (0, []) for a fresh run."""
    state = checkpoint.load() if checkpoint is not None else None
    if state is None:
        return 0, []
    net.load_state_dict(state["net"])
    for opt, saved in zip(optimizers, state["optimizers"]):
        opt.load_state_dict(saved)
    return state["position"], state["rows"]


def _save(checkpoint: EpochCheckpoint | None, position: int, rows: list[dict], net: DecoupledNet, optimizers: list[torch.optim.Optimizer]) -> None:
    if checkpoint is not None:
        checkpoint.save({"position": position, "rows": rows, "net": net.state_dict(), "optimizers": [opt.state_dict() for opt in optimizers]})


def train_dgl(net: DecoupledNet, train: BatchLoader, test: BatchLoader, cfg: TrainConfig, progress: Progress, checkpoint: EpochCheckpoint | None = None) -> list[dict]:
    optimizers = [cfg.optim.make(net.module_parameters(j)) for j in range(net.k)]
    start, rows = _resume(checkpoint, net, optimizers)
    if start:
        progress(start * len(train))
    for epoch in range(start, cfg.epochs):
        if cfg.optim.reset_on_decay and cfg.optim.starts_decay(epoch):
            optimizers = [cfg.optim.make(net.module_parameters(j)) for j in range(net.k)]
        for opt in optimizers:
            set_lr(opt, cfg.optim.lr_at(epoch))
        net.train()
        loss_sum = torch.zeros(net.k)
        for x, y in train.epoch(epoch):
            loss_sum += torch.stack(dgl_step(net, optimizers, x, y)).cpu()
            progress(1)
        rows += _rows(epoch, list(range(net.k)), "train_loss", (loss_sum / len(train)).tolist())
        if cfg.evaluates_after(epoch):
            rows += _eval_rows(net, test, epoch, list(range(net.k)), cfg.ensemble)
        _save(checkpoint, epoch + 1, rows, net, optimizers)
    return rows


def train_greedy(net: DecoupledNet, train: BatchLoader, test: BatchLoader, cfg: TrainConfig, progress: Progress, checkpoint: EpochCheckpoint | None = None) -> list[dict]:
    # The checkpoint's position counts epochs over all modules: module j's epoch e is j * epochs + e.
    state = checkpoint.load() if checkpoint is not None else None
    position, rows = (0, []) if state is None else (state["position"], state["rows"])
    if state is not None:
        net.load_state_dict(state["net"])
        progress(position * len(train))
    first_module, first_epoch = divmod(position, cfg.epochs)
    for j in range(first_module, net.k):
        optimizer = cfg.optim.make(net.module_parameters(j))
        if state is not None and j == first_module and first_epoch > 0:  # resuming inside module j's epochs
            optimizer.load_state_dict(state["optimizers"][0])
        for i in range(j):  # frozen prefix: eval-mode BN, no gradients
            net.stages[i].eval().requires_grad_(False)
        for epoch in range(first_epoch if j == first_module else 0, cfg.epochs):
            if cfg.optim.reset_on_decay and cfg.optim.starts_decay(epoch):
                optimizer = cfg.optim.make(net.module_parameters(j))
            set_lr(optimizer, cfg.optim.lr_at(epoch))
            net.stages[j].train()
            net.heads[j].train()
            loss_sum = torch.zeros(())
            for x, y in train.epoch(epoch):
                with torch.no_grad():
                    for i in range(j):
                        x = net.stages[i](x)
                _, loss = local_step(net.stages[j], net.heads[j], optimizer, x, y)
                loss_sum += loss.cpu()
                progress(1)
            rows += _rows(epoch, [j], "train_loss", [loss_sum.item() / len(train)])
            if cfg.evaluates_after(epoch):
                rows += _eval_rows(net, test, epoch, [j], cfg.ensemble)
            _save(checkpoint, j * cfg.epochs + epoch + 1, rows, net, [optimizer])
    net.requires_grad_(True)
    return rows


def train_backprop(net: DecoupledNet, train: BatchLoader, test: BatchLoader, cfg: TrainConfig, progress: Progress, checkpoint: EpochCheckpoint | None = None) -> list[dict]:
    # The heads of modules 0..K-2 are not part of the end-to-end network: not trained, not reported.
    params = [p for stage in net.stages for p in stage.parameters()] + list(net.heads[-1].parameters())
    optimizer = cfg.optim.make(params)
    last = net.k - 1
    start, rows = _resume(checkpoint, net, [optimizer])
    if start:
        progress(start * len(train))
    for epoch in range(start, cfg.epochs):
        if cfg.optim.reset_on_decay and cfg.optim.starts_decay(epoch):
            optimizer = cfg.optim.make(params)
        set_lr(optimizer, cfg.optim.lr_at(epoch))
        net.train()
        loss_sum = torch.zeros(())
        for x, y in train.epoch(epoch):
            loss_sum += backprop_step(net, optimizer, x, y).cpu()
            progress(1)
        rows += _rows(epoch, [last], "train_loss", [loss_sum.item() / len(train)])
        if cfg.evaluates_after(epoch):
            scores = evaluate(net, test, modules=[last])
            rows += _rows(epoch, [last], "test_accuracy", scores["accuracy"])
        _save(checkpoint, epoch + 1, rows, net, [optimizer])
    return rows


METHODS: dict[str, Callable[..., list[dict]]] = {"dgl": train_dgl, "greedy": train_greedy, "backprop": train_backprop}


def total_steps(method: str, k: int, steps_per_epoch: int, cfg: TrainConfig) -> int:
    """Number of updates `train` will report through `progress` (greedy trains K modules in turn)."""
    return cfg.epochs * steps_per_epoch * (k if method == "greedy" else 1)


def train(method: str, net: DecoupledNet, train_loader: BatchLoader, test_loader: BatchLoader, cfg: TrainConfig, *, progress: Progress | None = None,
          checkpoint: EpochCheckpoint | None = None) -> list[dict]:
    """Train `net` in place with `method`; returns tidy rows (see the module docstring).

    With `checkpoint`, the state after every epoch is saved there, and a run that finds one
    resumes after its epoch (dglsim.train.checkpoint)."""
    return METHODS[method](net, train_loader, test_loader, cfg, progress or (lambda n: None), checkpoint)
