"""Residual VQ: one stage is plain VQ, decoding sums the stages, and distortion does not grow
with stages that sit at a Lloyd fixed point of the data they quantize."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dglsim.quant import VQConfig, VQState, rvq_decode, rvq_encode, rvq_init, stack_codebooks, vq_assign, vq_decode, vq_init, vq_update


def _lloyd_stages(cfg: VQConfig, x: torch.Tensor, iters: int, seed: int) -> tuple[VQState, ...]:
    """Stages trained one after the other, each by batch k-means (gamma = 0: each EMA step is a
    Lloyd step) on the residuals the stages before it leave, ending with an update."""
    g = torch.Generator().manual_seed(seed)
    residual, states = x, []
    for _ in range(cfg.stages):
        state = vq_init(cfg, residual, g)
        for _ in range(iters):
            state = vq_update(cfg, state, residual, vq_assign(cfg, state, residual), g)
        states.append(state)
        residual = residual - vq_decode(state.codebook, vq_assign(cfg, state, residual))
    return tuple(states)


def _distortion(states, cfg, x) -> float:
    codes, _ = rvq_encode(cfg, states, x)
    return float((x - rvq_decode(stack_codebooks(states), codes)).square().sum(1).mean())


def test_one_stage_is_plain_vq():
    cfg = VQConfig(codes=8, groups=2)
    x = torch.randn(200, 6, generator=torch.Generator().manual_seed(0))
    states = rvq_init(cfg, x, torch.Generator().manual_seed(1))
    plain = vq_init(cfg, x, torch.Generator().manual_seed(1))
    codes, inputs = rvq_encode(cfg, states, x)
    assert len(states) == 1 and states[0].equals(plain)
    assert torch.equal(codes, vq_assign(cfg, plain, x)) and torch.equal(inputs[0], x)
    assert torch.equal(rvq_decode(stack_codebooks(states), codes), vq_decode(plain.codebook, codes))


@given(st.integers(1, 4), st.sampled_from([1, 2]), st.integers(2, 20), st.integers(0, 2**31 - 1))
def test_decode_is_the_sum_of_each_stages_code(stages, groups, k, seed):
    cfg = VQConfig(codes=k, groups=groups, stages=stages, search="dense")
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(60, 2 * groups, generator=g)
    states = rvq_init(cfg, x, g)
    codes, inputs = rvq_encode(cfg, states, x)
    assert codes.shape == (60, stages * groups) and len(inputs) == stages
    expected = torch.zeros_like(x)
    for r, state in enumerate(states):
        for gi in range(groups):
            expected[:, 2 * gi : 2 * gi + 2] += state.codebook[gi][codes[:, r * groups + gi].long()]
    assert torch.allclose(rvq_decode(stack_codebooks(states), codes), expected, atol=1e-6)
    # each stage encoded the residual of the stages before it
    for r in range(1, stages):
        assert torch.allclose(inputs[r], inputs[r - 1] - vq_decode(states[r - 1].codebook, codes[:, (r - 1) * groups : r * groups]), atol=1e-6)


@pytest.mark.claim("residual-monotone")
@settings(max_examples=40)
@given(st.integers(2, 4), st.integers(2, 16), st.integers(1, 4), st.integers(0, 2**31 - 1))
def test_distortion_does_not_increase_with_stages_at_a_lloyd_fixed_point(stages, k, d, seed):
    """A stage whose codes are the centroids of the residuals assigned to them leaves a
    within-cluster error no larger than the residual itself (each centroid is no farther from
    its cluster, in mean square, than 0 is), and nearest-code assignment can only lower it.
    Tolerance: float32 sums over 300 vectors (relative 1e-5)."""
    cfg = VQConfig(codes=k, stages=stages, gamma=0.0, dead_below=0.0, epsilon=1e-9, search="dense")
    x = torch.randn(300, d, generator=torch.Generator().manual_seed(seed)) * torch.linspace(1, 3, d)
    states = _lloyd_stages(cfg, x, 8, seed)
    curve = [float(x.square().sum(1).mean())] + [_distortion(states[:r], cfg, x) for r in range(1, stages + 1)]
    assert all(b <= a * (1 + 1e-5) + 1e-9 for a, b in zip(curve, curve[1:]))


@pytest.mark.control("residual-monotone")
def test_a_stage_away_from_its_fixed_point_can_add_distortion():
    """Negative control of the test above: a second stage whose codes are not centroids of the
    residuals (every code shifted by 3 along the first axis) makes the distortion larger."""
    cfg = VQConfig(codes=8, stages=2, gamma=0.0, dead_below=0.0, epsilon=1e-9, search="dense")
    x = torch.randn(300, 2, generator=torch.Generator().manual_seed(0))
    states = _lloyd_stages(cfg, x, 8, 0)
    shifted = states[1].codebook + torch.tensor([3.0, 0.0])
    broken = (states[0], VQState(shifted, states[1].counts, states[1].sums))
    assert _distortion(states, cfg, x) < _distortion(states[:1], cfg, x)
    assert _distortion(broken, cfg, x) > _distortion(states[:1], cfg, x)


def test_two_stages_of_32_codes_beat_one_of_32_and_approach_one_of_1024():
    """The reason for RVQ: 10 bits as 2 x 32 codes is searched with 64 distances instead of
    1,024 and keeps most of the distortion gain of 1,024 codes over 32 (Gaussian data, 8 dims,
    Lloyd-trained, held-out samples)."""
    g = torch.Generator().manual_seed(0)
    train, test = torch.randn(20000, 8, generator=g), torch.randn(5000, 8, generator=g)
    d32 = _distortion(_lloyd_stages(VQConfig(codes=32, gamma=0.0, search="dense"), train, 20, 0), VQConfig(codes=32), test)
    d2x32 = _distortion(_lloyd_stages(VQConfig(codes=32, stages=2, gamma=0.0, search="dense"), train, 20, 0), VQConfig(codes=32, stages=2), test)
    d1024 = _distortion(_lloyd_stages(VQConfig(codes=1024, gamma=0.0, search="dense"), train, 20, 0), VQConfig(codes=1024), test)
    assert d1024 < d2x32 < d32
    assert (d32 - d2x32) > 0.5 * (d32 - d1024)
