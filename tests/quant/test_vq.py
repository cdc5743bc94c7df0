"""Online VQ: nearest-code encoding, the EMA k-means update, restarts, explicit state, and the
distortion laws of quantization theory."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from dglsim.errors import InvalidArgument
from dglsim.quant import VQConfig, VQState, code_dtype, lloyd_step, vq_assign, vq_decode, vq_init, vq_update

EPS32 = torch.finfo(torch.float32).eps


def _trained(cfg: VQConfig, x: torch.Tensor, steps: int, seed: int = 0) -> VQState:
    g = torch.Generator().manual_seed(seed)
    state = vq_init(cfg, x, g)
    for _ in range(steps):
        state = vq_update(cfg, state, x, vq_assign(cfg, state, x), g)
    return state


def _distortion(state: VQState, cfg: VQConfig, x: torch.Tensor) -> float:
    return float((x - vq_decode(state.codebook, vq_assign(cfg, state, x))).square().sum(1).mean())


@given(st.integers(2, 300), st.sampled_from([1, 2, 3, 4]), st.integers(1, 6), st.integers(0, 2**31 - 1), st.sampled_from(["dense", "pruned", "auto"]))
def test_encode_then_decode_returns_the_nearest_code_of_each_group(k, groups, per_group, seed, search):
    cfg = VQConfig(codes=k, groups=groups, search=search, search_dims=2, search_block=8)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(max(k, 50), groups * per_group, generator=g)
    state = _trained(cfg, x, 2, seed)
    probe = torch.randn(64, groups * per_group, generator=g)
    decoded = vq_decode(state.codebook, vq_assign(cfg, state, probe))
    for gi in range(groups):
        part = probe[:, gi * per_group : (gi + 1) * per_group].double()
        book = state.codebook[gi].double()
        best = torch.cdist(part, book).square().min(1).values
        got = (part - decoded[:, gi * per_group : (gi + 1) * per_group].double()).square().sum(1)
        allowance = 8 * (per_group + 2) * EPS32 * (part.norm(dim=1) + book.norm(dim=1).max()) ** 2
        assert (got - best <= allowance).all()


@given(st.integers(2, 24), st.integers(1, 4), st.integers(0, 2**31 - 1))
def test_distortion_never_increases_when_a_code_is_added_to_a_converged_codebook(k, d, seed):
    cfg = VQConfig(codes=k, gamma=0.0, dead_below=0.0, epsilon=1e-9, search="dense")
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(400, d, generator=g)
    state = _trained(cfg, x, 30, seed)  # Lloyd iterations (gamma = 0: each step is a batch k-means step)
    before = _distortion(state, cfg, x)
    new_code = torch.randn(1, 1, d, generator=g)
    grown = VQState(torch.cat([state.codebook, new_code], 1), torch.ones(1, k + 1), torch.zeros(1, k + 1, d))
    after = _distortion(grown, VQConfig(codes=k + 1, search="dense"), x)
    assert after <= before * (1 + 1e-6)  # float32 sums of 400 terms


@pytest.mark.parametrize("d", [2, 3])
def test_distortion_falls_with_k_at_the_high_resolution_rate(d):
    """Zador: D(K) ~ c K^(-2/d). Slope of log D against log K over K = 16..128, Lloyd-trained on
    Gaussian data, measured on held-out samples. Tolerance: 20% of the exponent. The law is
    asymptotic; at these K the Gaussian's unbounded support makes the slope about 10% shallower
    (measured -0.90 for d = 2, -0.60 for d = 3 with 20,000 samples), and the held-out estimate
    adds about 1% of Monte-Carlo error per point."""
    g = torch.Generator().manual_seed(0)
    train, test = torch.randn(12000, d, generator=g), torch.randn(12000, d, generator=g)
    ks = [16, 32, 64, 128]
    distortions = []
    for k in ks:
        cfg = VQConfig(codes=k, gamma=0.0, dead_below=0.0, epsilon=1e-9, search="dense")
        distortions.append(_distortion(_trained(cfg, train, 30), cfg, test))
    slope = np.polyfit(np.log(ks), np.log(distortions), 1)[0]
    assert -2 / d * 1.2 <= slope <= -2 / d * 0.8


def test_one_ema_update_by_hand():
    cfg = VQConfig(codes=2, gamma=0.5, epsilon=0.1, dead_below=0.0, search="dense")
    state = VQState(torch.tensor([[[0.0], [10.0]]]), torch.tensor([[2.0, 2.0]]), torch.tensor([[[0.0], [20.0]]]))
    x = torch.tensor([[1.0], [3.0], [9.0]])
    codes = vq_assign(cfg, state, x)
    assert codes[:, 0].tolist() == [0, 0, 1]
    new = vq_update(cfg, state, x, codes, torch.Generator().manual_seed(0))
    counts = torch.tensor([0.5 * 2 + 0.5 * 2, 0.5 * 2 + 0.5 * 1])  # [2, 1.5]
    sums = torch.tensor([0.5 * 0 + 0.5 * 4, 0.5 * 20 + 0.5 * 9])  # [2, 14.5]
    n = counts.sum()
    smoothed = (counts + 0.1) / (n + 2 * 0.1) * n
    assert torch.allclose(new.counts[0], counts) and torch.allclose(new.sums[0, :, 0], sums)
    assert torch.allclose(new.codebook[0, :, 0], sums / smoothed)
    assert new.step == 1 and state.step == 0 and state.codebook[0, 1, 0] == 10.0  # the old state is untouched


def test_a_dead_code_restarts_on_a_vector_of_the_batch():
    cfg = VQConfig(codes=3, gamma=0.5, dead_below=0.2, search="dense")
    state = VQState(torch.tensor([[[0.0], [1.0], [1000.0]]]), torch.tensor([[5.0, 5.0, 0.1]]), torch.tensor([[[0.0], [5.0], [100.0]]]))
    x = torch.tensor([[0.1], [0.9], [0.2], [1.1]])
    new = vq_update(cfg, state, x, vq_assign(cfg, state, x), torch.Generator().manual_seed(0))
    # counts after the EMA: 3.5, 3.5, 0.05 (mean 2.35); 0.05 < 0.2 x 2.35, so code 2 restarts
    # with the mean count as its weight, on one of the batch's vectors (up to Laplace smoothing)
    assert new.counts[0, 2].item() == pytest.approx(7.05 / 3)
    assert min(abs(new.codebook[0, 2, 0].item() - v) for v in x[:, 0].tolist()) < 1e-4
    assert new.codebook[0, 0, 0] < 1 and new.codebook[0, 1, 0] < 2  # the live codes follow their EMA


def test_state_round_trips_and_compares():
    cfg = VQConfig(codes=4, groups=2)
    x = torch.randn(50, 6, generator=torch.Generator().manual_seed(1))
    a = _trained(cfg, x, 3)
    b = VQState.from_state_dict(a.state_dict())
    assert a.equals(b) and a.step == 3
    c = vq_update(cfg, b, x, vq_assign(cfg, b, x), torch.Generator().manual_seed(0))
    assert not a.equals(c) and a.equals(b)


def test_codes_use_the_smallest_integer_type():
    assert [code_dtype(k) for k in (2, 256, 257, 65536, 65537)] == [torch.uint8, torch.uint8, torch.uint16, torch.uint16, torch.int32]
    cfg = VQConfig(codes=300)
    x = torch.randn(400, 4, generator=torch.Generator().manual_seed(0))
    assert vq_assign(cfg, _trained(cfg, x, 1), x).dtype == torch.uint16


def test_bad_input_is_refused_with_the_rule():
    with pytest.raises(InvalidArgument, match="'codes' of VQConfig must be an int >= 2, got 1"):
        VQConfig(codes=1)
    with pytest.raises(InvalidArgument, match="'gamma' of VQConfig must be a real in \\[0.0, 1.0\\)"):
        VQConfig(gamma=1.0)
    with pytest.raises(InvalidArgument, match="divisible by groups = 3"):
        vq_init(VQConfig(codes=2, groups=3), torch.zeros(10, 4), torch.Generator())
    with pytest.raises(InvalidArgument, match="at least codes = 8 vectors"):
        vq_init(VQConfig(codes=8), torch.zeros(5, 4), torch.Generator())


def test_kmeans_plusplus_seeds_distinct_rows_and_counts_the_batch():
    cfg = VQConfig(codes=16, groups=2, init="kmeans++")
    x = torch.randn(500, 6, generator=torch.Generator().manual_seed(0))
    state = vq_init(cfg, x, torch.Generator().manual_seed(1))
    for g in range(2):
        part = x[:, 3 * g : 3 * g + 3]
        book = state.codebook[g]
        assert (book[:, None] == part[None]).all(-1).any(1).all()  # every code is a row of the batch
        assert len({tuple(r) for r in book.tolist()}) == 16
        assert float(state.counts[g].sum()) == pytest.approx(500)  # each code holds its share of the batch
        assert torch.allclose(state.sums[g], book * state.counts[g][:, None])


def test_a_lloyd_step_never_increases_the_distortion():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(400, 3, generator=g)
    book = x[:10].clone()
    before = float(torch.cdist(x, book).square().min(1).values.mean())
    after = float(torch.cdist(x, lloyd_step(x, book)).square().min(1).values.mean())
    assert after <= before * (1 + 1e-6)


def test_data_initialisation_finds_separated_clusters_that_random_draws_miss():
    """16 tight clusters, far apart: k-means++ with Lloyd iterations puts one code in each, so
    the first codebook's distortion is the clusters' own variance; drawing 16 random vectors
    leaves some cluster without a code (coupon collector: P(all 16 hit) = 16!/16^16 ~ 1e-6)."""
    g = torch.Generator().manual_seed(3)
    centres = torch.randn(16, 4, generator=g) * 20
    x = (centres[torch.arange(1600) % 16] + 0.1 * torch.randn(1600, 4, generator=g))
    def first_distortion(cfg):
        state = vq_init(cfg, x, torch.Generator().manual_seed(4))
        return float((x - vq_decode(state.codebook, vq_assign(cfg, state, x))).square().sum(1).mean())
    data = first_distortion(VQConfig(codes=16, init="kmeans++", lloyd_iters=5, search="dense"))
    random = first_distortion(VQConfig(codes=16, search="dense"))
    assert data < 4 * 0.01 * 1.5  # 4 dims of variance 0.01, with Monte-Carlo room
    assert random > 10 * data


def test_lloyd_iterations_need_kmeans_plus_plus():
    with pytest.raises(InvalidArgument, match="'lloyd_iters' of VQConfig must be 0 unless init is 'kmeans\\+\\+'"):
        VQConfig(lloyd_iters=3)
