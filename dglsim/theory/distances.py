"""Distances between a module's current input law q_t and its limit q*, from samples: what c_t
(assumption A4: c_t = integral |q_t - q*|, the L1 distance, twice the total variation) can be
estimated by.

- Kernel MMD with a Gaussian kernel (k <= 1): every f in the kernel's unit ball has
  sup|f| <= 1, so MMD(q_t, q*) <= integral |q_t - q*| = c_t. The unbiased estimate of MMD^2
  has standard error O(1/sqrt(n)); it is a lower bound of c_t up to that error.
- Total variation between code histograms under a fixed reference codebook: assigning each
  sample to its nearest code is a map applied to both laws, and no map increases total
  variation, so TV(histograms) <= TV(q_t, q*) = c_t / 2. The plug-in estimate is biased
  upwards by sampling (about sqrt(K / n) for K cells and n samples).

Both are lower bounds: c_t itself, on continuous laws, is only computed exactly where the laws
are known (the exact testbeds of dglsim.theory.testbeds).
"""

from __future__ import annotations

import torch

from dglsim.errors import InvalidArgument
from dglsim.quant.search import nearest_dense

__all__ = ["median_bandwidth", "mmd2_unbiased", "code_histogram_tv"]


def _check(x: torch.Tensor, y: torch.Tensor, where: str) -> None:
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1] or x.shape[0] < 2 or y.shape[0] < 2:
        raise InvalidArgument(f"'x' and 'y' of {where} must be (n, d) and (m, d) with n, m >= 2, got {tuple(x.shape)} and {tuple(y.shape)}")


def median_bandwidth(x: torch.Tensor) -> float:
    """The median pairwise distance of the rows of x (the usual kernel bandwidth heuristic);
    fix it once from the reference sample so that the distance is the same along training."""
    d = torch.cdist(x.double(), x.double())
    return float(d[torch.triu_indices(len(x), len(x), 1).unbind()].median())


def mmd2_unbiased(x: torch.Tensor, y: torch.Tensor, bandwidth: float) -> float:
    """Unbiased estimate of MMD^2 between the laws of the rows of x and y, Gaussian kernel
    exp(-||a - b||^2 / (2 bandwidth^2)). Can be slightly negative when the laws are equal."""
    _check(x, y, "mmd2_unbiased")
    if not bandwidth > 0:
        raise InvalidArgument(f"'bandwidth' of mmd2_unbiased must be > 0, got {bandwidth!r}")
    x, y = x.double(), y.double()
    n, m = len(x), len(y)
    k = lambda a, b: torch.exp(-torch.cdist(a, b).square() / (2 * bandwidth**2))  # noqa: E731
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    xx = (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
    yy = (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return float(xx + yy - 2 * kxy.mean())


def code_histogram_tv(x: torch.Tensor, y: torch.Tensor, codebook: torch.Tensor) -> float:
    """Total variation between the histograms of nearest codes of x and of y under `codebook` (K, d)."""
    _check(x, y, "code_histogram_tv")
    k = codebook.shape[0]
    px = torch.bincount(nearest_dense(x.float(), codebook.float()), minlength=k).double() / len(x)
    py = torch.bincount(nearest_dense(y.float(), codebook.float()), minlength=k).double() / len(y)
    return float((px - py).abs().sum() / 2)
