"""One update of one module (DGL's local step) and one end-to-end backprop update."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dglsim.models.decoupled import DecoupledNet


def local_step(stage: nn.Module, head: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward module j on `x`, take its auxiliary loss, update its stage and head.

    Returns (the detached output sent to module j+1, the loss as a 0-d tensor). The output is
    the one computed before this update, as in a pipelined forward. `x` arrives detached, so
    no gradient is computed for it: DGL skips the input gradient of every module but the first
    (whose input is data) for free.
    """
    out = stage(x)
    loss = F.cross_entropy(head(out), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return out.detach(), loss.detach()


def dgl_step(net: DecoupledNet, optimizers: list[torch.optim.Optimizer], x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    """Synchronous DGL on one mini-batch: module 0, then 1, ..., each on its predecessor's output."""
    losses = []
    for stage, head, opt in zip(net.stages, net.heads, optimizers):
        x, loss = local_step(stage, head, opt, x, y)
        losses.append(loss)
    return losses


def backprop_step(net: DecoupledNet, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """End-to-end backprop through all stages and the last head."""
    loss = F.cross_entropy(net(x), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()
