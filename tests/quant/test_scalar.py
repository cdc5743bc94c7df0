"""Scalar baselines: nearest rounding error bound, unbiased stochastic rounding."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from dglsim.errors import InvalidArgument
from dglsim.quant import uniform_decode, uniform_encode


@given(st.sampled_from([8, 16]), st.integers(0, 2**31 - 1), st.floats(1e-3, 1e3))
def test_nearest_rounding_errs_by_at_most_half_a_step(bits, seed, scale):
    x = torch.randn(500, generator=torch.Generator().manual_seed(seed)) * scale
    codes, grid = uniform_encode(x, bits)
    assert codes.dtype == (torch.uint8 if bits == 8 else torch.uint16)
    err = (uniform_decode(codes, grid) - x).abs()
    step = float(grid[1])
    assert (err <= step / 2 + 4 * torch.finfo(torch.float32).eps * x.abs().max()).all()


def test_stochastic_rounding_is_unbiased():
    """Monte-Carlo: N encodings of the same values; each draw errs by less than one step, so the
    mean error has standard deviation < step / (2 sqrt(N)); 5 of those bounds every value
    (probability of a false failure < 1e-6 per value, 200 values)."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(200, generator=g) * 3 - 1
    n = 4000
    total = torch.zeros_like(x, dtype=torch.float64)
    for _ in range(n):
        codes, grid = uniform_encode(x, 8, stochastic=True, generator=g)
        total += uniform_decode(codes, grid).double()
    step = float(grid[1])
    bias = total / n - x.double()
    assert (bias.abs() < 5 * step / (2 * n**0.5)).all()
    nearest = uniform_decode(*uniform_encode(x, 8)) - x
    assert nearest.abs().max() > 5 * step / (2 * n**0.5)  # the check can tell: rounding to nearest is biased per value


def test_constant_tensors_and_bad_input():
    codes, grid = uniform_encode(torch.full((5,), 2.5), 8)
    assert torch.equal(uniform_decode(codes, grid), torch.full((5,), 2.5))
    with pytest.raises(InvalidArgument, match="'bits' of uniform_encode must be one of \\[8, 16\\], got 4"):
        uniform_encode(torch.zeros(3), 4)
    with pytest.raises(InvalidArgument, match="'generator' of uniform_encode must be a torch.Generator"):
        uniform_encode(torch.zeros(3), 8, stochastic=True)
