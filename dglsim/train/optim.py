"""Per-module optimizers (SGD or Adam) and their step schedule.

The paper's CIFAR settings: SGD with momentum 0.9, weight decay 5e-4, learning rate 0.1
multiplied by 0.2 every 15 epochs. Its DNI comparison (after Jaderberg et al. 2017, appendix
C.1) trains every method with Adam at a constant 3e-5 (eugenium/DGL, dni_comparisons/): Adam's
first-moment decay beta1 is `momentum` (0.9, Adam's usual value, by default), beta2 is 0.999,
and weight decay is the L2 term torch.optim.Adam adds to the gradient. The schedule is a pure
function of the epoch, so a run holds no scheduler state and each module may keep its own
epoch count (asynchronous modes).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import ClassVar, Iterable

import torch

from dglsim.constraints import Constraint, boolean, int_at_least, int_tuple, one_of, optional, positive_real, real_in, validate_fields
from dglsim.errors import InvalidArgument

OPTIMIZERS = ("sgd", "adam")
ADAM_BETA2 = 0.999  # torch's and Kingma & Ba's default; the DNI comparison keeps it


@dataclass(frozen=True)
class OptimConfig:
    optimizer: str = "sgd"  # "sgd" | "adam"
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lr_decay: float = 0.2  # factor applied every `lr_decay_every` epochs
    lr_decay_every: int = 15
    # the epochs (0-indexed) from which the rate is multiplied by lr_decay once more, in place of
    # a decay every lr_decay_every epochs: DDG's ResNet-110 schedule (0.1 at its epochs 150 and
    # 225, counted from 1) is (149, 224)
    lr_milestones: tuple[int, ...] | None = None
    nesterov: bool = False
    # A fresh optimizer (momentum buffers cleared) at every decay, as the authors' buffer
    # experiments do (eugenium/DGL, buffer_experiments/cifar_buffer.py).
    reset_on_decay: bool = False

    CONSTRAINTS: ClassVar[dict[str, Constraint]] = {
        "optimizer": one_of(OPTIMIZERS),
        "lr": positive_real(),
        "momentum": real_in(0.0, 1.0, high_open=True),  # SGD's momentum; Adam's beta1
        "weight_decay": real_in(0.0, 1.0),
        "lr_decay": real_in(0.0, 1.0, low_open=True),
        "lr_decay_every": int_at_least(1),
        "lr_milestones": optional(int_tuple(low=1, increasing=True)),
        "nesterov": boolean(),
        "reset_on_decay": boolean(),
    }

    def __post_init__(self) -> None:
        validate_fields(self, self.CONSTRAINTS)
        if self.lr_milestones is not None and self.lr_decay_every != OptimConfig.lr_decay_every:
            raise InvalidArgument(f"'lr_decay_every' of OptimConfig must be left at its default {OptimConfig.lr_decay_every} when lr_milestones is set "
                                  f"(the milestones say when the rate decays), got {self.lr_decay_every!r} with lr_milestones {self.lr_milestones!r}")
        if self.optimizer == "adam" and self.nesterov:
            raise InvalidArgument("'nesterov' of OptimConfig must be False when optimizer is 'adam' (Adam has no Nesterov variant here), got True")

    def lr_at(self, epoch: int) -> float:
        """Learning rate during (0-indexed) `epoch`."""
        if self.lr_milestones is not None:
            return self.lr * self.lr_decay ** bisect.bisect_right(self.lr_milestones, epoch)
        return self.lr * self.lr_decay ** (epoch // self.lr_decay_every)

    def starts_decay(self, epoch: int) -> bool:
        """Whether the rate changes as (0-indexed) `epoch` starts: where reset_on_decay starts a fresh optimizer."""
        return epoch > 0 and self.lr_at(epoch) != self.lr_at(epoch - 1)

    def make(self, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
        if self.optimizer == "adam":
            return torch.optim.Adam(params, lr=self.lr, betas=(self.momentum, ADAM_BETA2), weight_decay=self.weight_decay)
        return torch.optim.SGD(params, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay, nesterov=self.nesterov)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
