"""Per-module SGD and its step schedule.

The paper's CIFAR settings: SGD with momentum 0.9, weight decay 5e-4, learning rate 0.1
multiplied by 0.2 every 15 epochs. The schedule is a pure function of the epoch, so a run
holds no scheduler state and each module may keep its own epoch count (asynchronous modes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Iterable

import torch

from dglsim.constraints import Constraint, boolean, int_at_least, positive_real, real_in, validate_fields


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lr_decay: float = 0.2  # factor applied every `lr_decay_every` epochs
    lr_decay_every: int = 15
    nesterov: bool = False
    # A fresh optimizer (momentum buffers cleared) at every decay, as the authors' buffer
    # experiments do (eugenium/DGL, buffer_experiments/cifar_buffer.py).
    reset_on_decay: bool = False

    CONSTRAINTS: ClassVar[dict[str, Constraint]] = {
        "lr": positive_real(),
        "momentum": real_in(0.0, 1.0, high_open=True),
        "weight_decay": real_in(0.0, 1.0),
        "lr_decay": real_in(0.0, 1.0, low_open=True),
        "lr_decay_every": int_at_least(1),
        "nesterov": boolean(),
        "reset_on_decay": boolean(),
    }

    def __post_init__(self) -> None:
        validate_fields(self, self.CONSTRAINTS)

    def lr_at(self, epoch: int) -> float:
        """Learning rate during (0-indexed) `epoch`."""
        return self.lr * self.lr_decay ** (epoch // self.lr_decay_every)

    def make(self, params: Iterable[torch.nn.Parameter]) -> torch.optim.SGD:
        return torch.optim.SGD(params, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay, nesterov=self.nesterov)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
