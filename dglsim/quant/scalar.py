"""Scalar quantizers: the baselines other systems use, to compare vector quantization against.

Each maps a tensor to integers on a uniform grid of 2^bits levels spanning the tensor's
[min, max], with the grid (offset, step) sent alongside as two float32 values.

- nearest rounding: deterministic, error at most step/2 per value;
- stochastic rounding: rounds up with probability equal to the fractional part, so
  E[Q(x)] = x exactly (unbiased, as in QSGD), at the price of variance up to step^2/4.
"""

from __future__ import annotations

import torch

from dglsim.errors import InvalidArgument
from dglsim.quant.vq import code_dtype

__all__ = ["uniform_encode", "uniform_decode", "symmetric_encode", "symmetric_decode", "SCALAR_BITS"]

SCALAR_BITS = (8, 16)


def uniform_encode(x: torch.Tensor, bits: int, *, stochastic: bool = False,
                   generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(codes, grid) with grid = [offset, step] (float32): x ~ offset + codes * step."""
    if bits not in SCALAR_BITS:
        raise InvalidArgument(f"'bits' of uniform_encode must be one of {list(SCALAR_BITS)}, got {bits!r}")
    if stochastic and generator is None:
        raise InvalidArgument("'generator' of uniform_encode must be a torch.Generator when stochastic=True (rounding draws from it), got None")
    x = x.float()
    levels = 2**bits - 1
    lo, hi = x.min(), x.max()
    step = (hi - lo) / levels if hi > lo else torch.ones((), dtype=x.dtype, device=x.device)
    scaled = (x - lo) / step
    if stochastic:
        floor = scaled.floor()
        draws = torch.rand(scaled.shape, generator=generator).to(x.device)  # a CPU stream, the same on every device
        scaled = floor + (draws < (scaled - floor)).float()
    else:
        scaled = scaled.round()
    codes = scaled.clamp_(0, levels).to(torch.int32).to(code_dtype(levels + 1))
    return codes, torch.stack([lo, step]).float()


def uniform_decode(codes: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    return grid[0] + codes.to(torch.float32) * grid[1]


def symmetric_encode(x: torch.Tensor, bits: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """(q, scale): x (..., K, d) rounded to signed integers on a grid symmetric about 0, one
    float32 scale per leading index (max |x| over its (K, d) block / (2^(bits-1) - 1)). Zero maps
    to zero exactly, so an unchanged value costs no error; used for codebook deltas."""
    if bits != 8:
        raise InvalidArgument(f"'bits' of symmetric_encode must be 8 (int8 deltas), got {bits!r}")
    levels = 2 ** (bits - 1) - 1
    peak = x.float().abs().amax(dim=(-2, -1))
    scale = torch.where(peak > 0, peak / levels, torch.ones_like(peak))
    q = torch.round(x.float() / scale[..., None, None]).clamp_(-levels, levels).to(torch.int8)
    return q, scale


def symmetric_decode(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return q.to(torch.float32) * scale[..., None, None]
