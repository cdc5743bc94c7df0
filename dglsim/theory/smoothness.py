"""Local smoothness L: the top Hessian eigenvalue by power iteration on Hessian-vector products,
and secant estimates ||g(theta') - g(theta)|| / ||theta' - theta|| along a trajectory.

Assumption A1 asks for a global L; real training only shows local curvature. The Hessian's
spectral norm at a point is the local L there (a lower bound on any global one); secants between
consecutive iterates lower-bound the L of the segment between them, and their maximum over a
trajectory is the smallest L consistent with what training visited.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from dglsim.errors import InvalidArgument

__all__ = ["EigenEstimate", "hessian_top_eigenvalue", "hessian_vector_product", "secant_smoothness", "flat", "inner"]


def flat(tensors) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def inner(a, b) -> torch.Tensor:
    """The inner product of two parameter lists (tensor by tensor, summed)."""
    return sum((x * y).sum() for x, y in zip(a, b))


def hessian_vector_product(grads, params, vector) -> tuple[torch.Tensor, ...]:
    """H v for `grads` = the gradient of a loss in `params` taken with create_graph=True (double
    backward; the graph is kept for further products)."""
    return torch.autograd.grad(inner(grads, vector), params, retain_graph=True)


@dataclass(frozen=True)
class EigenEstimate:
    value: float  # the dominant eigenvalue (largest in magnitude), signed
    iterations: int
    converged: bool  # relative change of the Rayleigh quotient fell below tol
    residual: float  # ||Hv - value v|| for the final unit vector v: how far from an eigenpair


def hessian_top_eigenvalue(loss: Callable[[], torch.Tensor], params: list[torch.Tensor], *, iters: int = 100,
                           tol: float = 1e-4, seed: int = 0) -> EigenEstimate:
    """Power iteration with Hessian-vector products (double backward) of `loss()` in `params`.
    |value| is the spectral norm of the Hessian: the local smoothness constant at params."""
    if not isinstance(iters, int) or iters < 1:
        raise InvalidArgument(f"'iters' of hessian_top_eigenvalue must be an int >= 1, got {iters!r}")
    if not (isinstance(tol, float) and tol > 0):
        raise InvalidArgument(f"'tol' of hessian_top_eigenvalue must be a float > 0, got {tol!r}")
    grads = torch.autograd.grad(loss(), params, create_graph=True)
    gen = torch.Generator().manual_seed(seed)
    v = [torch.randn(p.shape, generator=gen).to(p) for p in params]
    norm = flat(v).norm()
    v = [t / norm for t in v]

    def hvp(vec):
        return hessian_vector_product(grads, params, vec)

    value, converged, it = 0.0, False, 0
    for it in range(1, iters + 1):
        hv = hvp(v)
        new_value = float(inner(hv, v))
        norm = flat(hv).norm()
        if norm == 0:
            return EigenEstimate(0.0, it, True, 0.0)
        v = [t / norm for t in hv]
        if it > 1 and abs(new_value - value) <= tol * max(abs(new_value), 1e-12):
            value, converged = new_value, True
            break
        value = new_value
    hv = hvp(v)
    rayleigh = float(inner(hv, v))
    residual = float(flat([a - rayleigh * b for a, b in zip(hv, v)]).norm())
    return EigenEstimate(rayleigh, it, converged, residual)


def secant_smoothness(thetas: list[torch.Tensor], grads: list[torch.Tensor]) -> torch.Tensor:
    """||g_{t+1} - g_t|| / ||theta_{t+1} - theta_t|| for consecutive (flat) iterates; steps that
    do not move the parameters are skipped. Use full-batch (probe-set) gradients: stochastic
    ones add their noise to the numerator."""
    if len(thetas) != len(grads) or len(thetas) < 2:
        raise InvalidArgument(f"'thetas' and 'grads' of secant_smoothness must be two lists of the same length >= 2, got {len(thetas)} and {len(grads)}")
    out = []
    for (a, b), (ga, gb) in zip(zip(thetas, thetas[1:]), zip(grads, grads[1:])):
        step = (b - a).norm()
        if step > 0:
            out.append((gb - ga).norm() / step)
    return torch.stack(out) if out else torch.zeros(0)
