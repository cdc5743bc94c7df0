"""One update of one module (DGL's local step) and one end-to-end backprop update."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dglsim.errors import InvalidArgument
from dglsim.models.decoupled import DecoupledNet


def local_step(stage: nn.Module, head: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
               replicas: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward module j on `x`, take its auxiliary loss, update its stage and head.

    Returns (the detached output sent to module j+1, the loss as a 0-d tensor). The output is
    the one computed before this update, as in a pipelined forward. `x` arrives detached, so
    no gradient is computed for it: DGL skips the input gradient of every module but the first
    (whose input is data) for free.

    With `replicas` = N > 1 the module is data-parallel: replica r takes the r-th of N disjoint
    shards of the batch (torch.tensor_split: sizes differ by at most one), and the all-reduce
    averages their gradients weighted by shard size, which is the gradient of the whole
    batch's mean loss: the same math as one replica, up to float rounding. What differs is
    what real data parallelism also changes: batch-norm layers in training mode normalise each
    shard by its own statistics (as DistributedDataParallel without SyncBatchNorm), and their
    running statistics are updated once per shard, in shard order.
    """
    if replicas == 1:
        out = stage(x)
        loss = F.cross_entropy(head(out), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return out.detach(), loss.detach()
    if not 1 < replicas <= len(y):
        raise InvalidArgument(f"'replicas' of local_step must be an int in [1, batch size {len(y)}] (one shard per replica), got {replicas!r}")
    optimizer.zero_grad(set_to_none=True)
    outs, losses = [], []
    for xs, ys in zip(x.tensor_split(replicas), y.tensor_split(replicas)):
        out = stage(xs)
        loss = F.cross_entropy(head(out), ys) * (len(ys) / len(y))  # the all-reduce's weighted average
        loss.backward()  # gradients accumulate: their sum is the weighted average over shards
        outs.append(out.detach())
        losses.append(loss.detach())
    optimizer.step()
    return torch.cat(outs), torch.stack(losses).sum()


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
