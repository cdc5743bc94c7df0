"""Exact testbeds: a module whose input law is known in closed form at every step, so that c_t,
the constants of the assumptions and the objective are computed, not estimated.

The module is logistic regression, loss log(1 + exp(-y theta.x)), on inputs from its producer:
labels y = +-1 with probability 1/2 and x | y ~ N(y m_t, sigma^2 I) in R^d. The producer's
convergence is the path of the mean m_t -> m*; the limit law q* has mean m*.

Everything the descent inequality needs is exact here:
- c_t = integral |q_t - q*| over the joint law of (x, y), the law the module trains on:
  c_t = 2 (2 Phi(|m_t - m*| / (2 sigma)) - 1), since each class-conditional Gaussian moves by
  the same distance and the L1 distance of two Gaussians with one covariance sigma^2 I is
  2 (2 Phi(delta / (2 sigma)) - 1) for means delta apart;
- L = (|m*|^2 + sigma^2) / 4: the Hessian of the objective is E[s(u)(1-s(u)) x x^T] <= E[x x^T] / 4,
  whose top eigenvalue is |m*|^2 + sigma^2;
- G = d sigma^2 + max(|m*|^2, max_t |m_t|^2): the gradient is -s(-y theta.x) y x, of norm <= |x|,
  and E|x|^2 = d sigma^2 + |m|^2 under a law of mean m;
- the objective L(theta) = E_{q*} loss and its gradient, by Gauss-Hermite quadrature in the one
  variable u = y theta.x ~ N(theta.m*, sigma^2 |theta|^2) (Stein's lemma turns the d-dimensional
  gradient integral into one-dimensional ones).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from scipy import optimize, special

from dglsim.errors import InvalidArgument

__all__ = ["LogisticTestbed", "mean_path"]

_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(80)  # probabilists' Hermite: E f(Z), Z ~ N(0, 1)
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()


def mean_path(m_star: np.ndarray, start: np.ndarray, steps: int, *, kind: str, rate: float) -> np.ndarray:
    """Producer means m_0..m_steps moving from `start` to m*: geometric (distance x rate^t) or
    polynomial (distance x (t + 1)^-rate); kind "constant" stays at `start` (a producer that does
    not converge: assumption A4 broken)."""
    t = np.arange(steps + 1, dtype=float)[:, None]
    gap = np.asarray(start, float) - np.asarray(m_star, float)
    if kind == "geometric":
        shrink = rate**t
    elif kind == "polynomial":
        shrink = (t + 1) ** -rate
    elif kind == "constant":
        shrink = np.ones_like(t)
    else:
        raise InvalidArgument(f"'kind' of mean_path must be one of ['geometric', 'polynomial', 'constant'], got {kind!r}")
    return np.asarray(m_star, float) + gap * shrink


@dataclass(frozen=True)
class LogisticTestbed:
    m_star: np.ndarray  # (d,) the limit law's class mean
    sigma: float

    def __post_init__(self) -> None:
        m = np.asarray(self.m_star, float)
        if m.ndim != 1 or m.size < 1 or not np.isfinite(m).all():
            raise InvalidArgument(f"'m_star' of LogisticTestbed must be a finite vector, got {self.m_star!r}")
        if not (isinstance(self.sigma, (int, float)) and self.sigma > 0 and math.isfinite(self.sigma)):
            raise InvalidArgument(f"'sigma' of LogisticTestbed must be a finite real > 0, got {self.sigma!r}")
        object.__setattr__(self, "m_star", m)

    @property
    def d(self) -> int:
        return self.m_star.size

    # --- the constants of the assumptions -------------------------------------------------
    @property
    def smoothness(self) -> float:
        return (float(self.m_star @ self.m_star) + self.sigma**2) / 4

    def second_moment_bound(self, means: np.ndarray) -> float:
        """G over the laws of the given means and the limit."""
        largest = max(float(self.m_star @ self.m_star), float((np.asarray(means) ** 2).sum(-1).max()))
        return self.d * self.sigma**2 + largest

    def l1_distance(self, means: np.ndarray) -> np.ndarray:
        """c_t (joint law of (x, y)) for each mean m_t (rows of `means`)."""
        gap = np.linalg.norm(np.atleast_2d(means) - self.m_star, axis=-1)
        return 2 * (2 * special.ndtr(gap / (2 * self.sigma)) - 1)

    # --- the objective under q*, by quadrature ------------------------------------------------
    def _u(self, theta: np.ndarray) -> np.ndarray:
        """Quadrature nodes of u for each theta: (..., nodes)."""
        return (theta @ self.m_star)[..., None] + self.sigma * np.linalg.norm(theta, axis=-1)[..., None] * _NODES

    def loss(self, theta: np.ndarray) -> np.ndarray | float:
        """L(theta) = E_{q*} loss, for one theta (d,) or many (..., d)."""
        theta = np.asarray(theta, float)
        out = np.logaddexp(0.0, -self._u(theta)) @ _WEIGHTS
        return float(out) if theta.ndim == 1 else out

    def gradient(self, theta: np.ndarray) -> np.ndarray:
        """grad L = -m* E s(-u) + sigma^2 theta E[s(u) s(-u)] (Stein's lemma on the Gaussian part),
        for one theta (d,) or many (..., d)."""
        theta = np.asarray(theta, float)
        u = self._u(theta)
        s_minus = special.expit(-u)
        return -self.m_star * (s_minus @ _WEIGHTS)[..., None] + self.sigma**2 * theta * ((s_minus * special.expit(u)) @ _WEIGHTS)[..., None]

    def minimum(self) -> float:
        """inf L, by minimising the quadrature objective (convex: the minimiser is unique)."""
        res = optimize.minimize(self.loss, np.zeros(self.d), jac=self.gradient, method="BFGS", options={"gtol": 1e-12})
        return float(res.fun)

    # --- SGD on inputs from the moving law ------------------------------------------------------
    def sample(self, mean: np.ndarray, n: int, generator: torch.Generator, shape: tuple[int, ...] = ()) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, y): n samples (times `shape`) of the law of class mean `mean`."""
        y = torch.randint(0, 2, (*shape, n), generator=generator, dtype=torch.float64) * 2 - 1
        x = y[..., None] * torch.as_tensor(mean, dtype=torch.float64) + self.sigma * torch.randn(*shape, n, self.d, generator=generator, dtype=torch.float64)
        return x, y

    @staticmethod
    def sample_gradients(theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """grad of the loss at theta (..., d) for samples x (..., n, d), y (..., n): (..., n, d)."""
        u = y * torch.einsum("...d,...nd->...n", theta, x)
        return -(torch.sigmoid(-u) * y)[..., None] * x

    def sgd(self, theta0: np.ndarray, means: np.ndarray, steps: np.ndarray, *, runs: int, batch: int, seed: int,
            quantize: Callable[[torch.Tensor], torch.Tensor] | None = None) -> np.ndarray:
        """`runs` independent SGD runs: step t draws `batch` samples from the law of mean means[t]
        (passed through `quantize`, when given, as a quantized link would) and moves by
        -steps[t] x the mini-batch gradient. Returns theta_0..theta_T: (T+1, runs, d)."""
        means, steps = np.asarray(means, float), np.asarray(steps, float)
        if len(means) < len(steps):
            raise InvalidArgument(f"'means' of LogisticTestbed.sgd must hold at least one mean per step ({len(steps)}), got {len(means)}")
        gen = torch.Generator().manual_seed(seed)
        theta = torch.tensor(np.broadcast_to(np.asarray(theta0, float), (runs, self.d)).copy(), dtype=torch.float64)
        out = [theta.clone()]
        for t, eta in enumerate(steps):
            x, y = self.sample(means[t], batch, gen, (runs,))
            if quantize is not None:
                x = quantize(x)
            theta = theta - eta * self.sample_gradients(theta, x, y).mean(1)
            out.append(theta.clone())
        return torch.stack(out).numpy()
