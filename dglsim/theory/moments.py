"""Gradient moments for assumption A3: the second moment G = E||g||^2 and the variance
E||g - E g||^2 of stochastic gradients, from per-sample or per-batch gradients.

Per-sample gradients use torch.func (vmap over a functional call), so they need a model whose
output for one sample does not depend on the others (no batch-norm in training mode); for
modules with batch-norm, use gradients of whole mini-batches (`batch_gradient`), which are the
stochastic gradients SGD actually takes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from dglsim.errors import InvalidArgument
from dglsim.theory.smoothness import flat

__all__ = ["Moments", "gradient_moments", "per_sample_gradients", "batch_gradient"]


@dataclass(frozen=True)
class Moments:
    second_moment: float  # mean of ||g_i||^2: the estimate of G
    variance: float  # mean of ||g_i - mean g||^2 (divided by n - 1: unbiased)
    mean_norm2: float  # ||mean g||^2
    count: int
    second_moment_se: float  # standard error of second_moment (spread of ||g_i||^2 over sqrt(n))


def gradient_moments(gradients: torch.Tensor) -> Moments:
    """Moments of the rows of `gradients` (n, P), n >= 2."""
    if gradients.ndim != 2 or gradients.shape[0] < 2:
        raise InvalidArgument(f"'gradients' of gradient_moments must be (n, P) with n >= 2, got shape {tuple(gradients.shape)}")
    g = gradients.double()
    n = g.shape[0]
    sq = g.square().sum(1)
    mean = g.mean(0)
    variance = float((g - mean).square().sum(1).sum() / (n - 1))
    return Moments(float(sq.mean()), variance, float(mean.square().sum()), n, float(sq.std() / n**0.5))


def per_sample_gradients(model: nn.Module, loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                         x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(n, P): the gradient of loss(model(x_i), y_i) in the model's parameters, for each sample."""
    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach() for k, v in model.named_buffers()}

    def one(p, xi, yi):
        out = functional_call(model, (p, buffers), (xi[None],))
        return loss(out, yi[None])

    per = vmap(grad(one), in_dims=(None, 0, 0))(params, x, y)
    return torch.cat([per[k].reshape(x.shape[0], -1) for k in params], 1)


def batch_gradient(model: nn.Module, loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                   x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The flat gradient of the mini-batch loss in the model's parameters (the model's mode as is)."""
    params = [p for p in model.parameters() if p.requires_grad]
    return flat(torch.autograd.grad(loss(model(x), y), params)).detach()
