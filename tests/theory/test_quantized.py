"""The quantized extension on the exact testbed: the gradient bias a quantized link adds is
within sqrt(E Lambda^2) sqrt(D), and the descent lemma holds with that extra term."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dglsim.quant import VQConfig, vq_assign, vq_decode, vq_init, vq_update
from dglsim.theory.bounds import logistic_quantization_bias_bound, quantized_descent_slack
from dglsim.theory.testbeds import LogisticTestbed, mean_path

RUNS, STEPS, Z = 1000, 40, 6.0  # as in test_descent.py: 6 standard errors per Monte-Carlo check


def _grid(h):
    return lambda x: torch.round(x / h) * h


def _vq(bed, k, seed):
    """A codebook of K codes, EMA-trained on samples of the limit law, then frozen."""
    cfg = VQConfig(codes=k, gamma=0.5, search="dense")
    gen = torch.Generator().manual_seed(seed)
    x, _ = bed.sample(bed.m_star, 4000, gen)
    state = vq_init(cfg, x.float(), gen)
    for _ in range(20):
        state = vq_update(cfg, state, x.float(), vq_assign(cfg, state, x.float()), gen)
    return lambda v: vq_decode(state.codebook, vq_assign(cfg, state, v.reshape(-1, v.shape[-1]).float())).double().reshape(v.shape)


quantizers = st.one_of(st.builds(lambda h: ("grid", h), st.floats(0.05, 1.5)), st.builds(lambda k: ("vq", k), st.sampled_from([2, 8, 32])))


@pytest.mark.claim("quantized-bias")
@given(st.integers(1, 3), st.floats(0.5, 2.0), quantizers, st.floats(0.0, 3.0), st.integers(0, 2**16))
def test_the_quantization_bias_of_the_gradient_is_within_its_bound(d, sigma, quantizer, theta_norm, seed):
    """The bound holds for any law, the empirical law of a sample included: on the sample both
    sides are exact, no tolerance is needed."""
    rng = np.random.default_rng(seed)
    bed = LogisticTestbed(rng.standard_normal(d), sigma)
    gen = torch.Generator().manual_seed(seed)
    quantize = _grid(quantizer[1]) if quantizer[0] == "grid" else _vq(bed, quantizer[1], seed)
    x, y = bed.sample(bed.m_star, 20000, gen)
    xq = quantize(x)
    direction = rng.standard_normal(d)
    theta = torch.as_tensor(theta_norm * direction / np.linalg.norm(direction))
    bias = (LogisticTestbed.sample_gradients(theta, xq, y) - LogisticTestbed.sample_gradients(theta, x, y)).mean(0).norm()
    assert float(bias) <= logistic_quantization_bias_bound(theta.numpy(), x.numpy(), xq.numpy()) * (1 + 1e-9)


@pytest.mark.control("quantized-bias")
def test_the_bias_check_fails_for_a_lipschitz_constant_that_ignores_theta():
    """Lambda = 1 (the Jacobian of the gradient in x without its |theta| |x| / 4 part) on a law
    whose inputs sit far out along a direction orthogonal to theta, quantized by a floor that
    moves every input the same way along theta: the per-sample errors add up instead of
    cancelling, and the bias exceeds sqrt(D), while the claim's Lambda still bounds it."""
    gen = torch.Generator().manual_seed(0)
    n = 20000
    x = torch.stack([0.3 * torch.randn(n, generator=gen, dtype=torch.float64), torch.full((n,), 5.0, dtype=torch.float64)], 1)
    y = torch.ones(n, dtype=torch.float64)
    xq = torch.stack([torch.floor(x[:, 0] / 0.5) * 0.5, x[:, 1]], 1)
    theta = torch.tensor([10.0, 0.0], dtype=torch.float64)
    bias = float((LogisticTestbed.sample_gradients(theta, xq, y) - LogisticTestbed.sample_gradients(theta, x, y)).mean(0).norm())
    assert bias <= logistic_quantization_bias_bound(theta.numpy(), x.numpy(), xq.numpy())
    assert bias > 2 * float((xq - x).square().sum(-1).mean().sqrt())


def _descent_violations(bed, quantize, means, etas, thetas, *, with_bias: bool, seed: int) -> list[int]:
    """The steps where the Monte-Carlo runs reject the quantized descent lemma (mean slack below
    -Z standard errors), with B_t from the claim's Lambda or B_t = 0."""
    gen = torch.Generator().manual_seed(seed + 1)
    loss, grad2 = bed.loss(thetas), (bed.gradient(thetas) ** 2).sum(-1)
    L, G, cs = bed.smoothness, bed.second_moment_bound(means), bed.l1_distance(means)
    out = []
    for t in range(len(etas)):
        # B_t(theta) for every run from one large sample of the step's law: Lambda depends on theta
        # only through |theta| (1 + |theta| M / 4, M = max(|x|, |Q(x)|)), so E Lambda^2 is
        # 1 + |theta| E[M] / 2 + |theta|^2 E[M^2] / 16.
        x, _ = bed.sample(means[t], 20000, gen)
        xq = quantize(x)
        m = torch.maximum(x.norm(dim=-1), xq.norm(dim=-1)).numpy()
        distortion = float((xq - x).square().sum(-1).mean())
        a = np.linalg.norm(thetas[t], axis=-1)
        bias = np.sqrt(1 + a * m.mean() / 2 + a**2 * (m**2).mean() / 16) * np.sqrt(distortion) if with_bias else 0.0
        decoded_g = float(xq.square().sum(-1).mean())  # |grad l| <= |Q(x)|: G~ <= E|Q(x)|^2
        slack = quantized_descent_slack(loss[t], loss[t + 1], grad2[t], etas[t], cs[t], bias, L, G, decoded_g)
        if slack.mean() < -Z * slack.std(ddof=1) / np.sqrt(slack.size):
            out.append(t)
    return out


@pytest.mark.claim("quantized-descent")
@given(st.integers(1, 2), st.floats(0.5, 1.5), quantizers, st.floats(0.05, 0.8), st.floats(0.55, 1.0), st.integers(0, 2**16))
@settings(max_examples=15)
def test_descent_lemma_with_quantized_inputs(d, sigma, quantizer, eta0, alpha, seed):
    rng = np.random.default_rng(seed)
    bed = LogisticTestbed(rng.standard_normal(d), sigma)
    quantize = _grid(quantizer[1]) if quantizer[0] == "grid" else _vq(bed, quantizer[1], seed)
    means = mean_path(bed.m_star, bed.m_star + rng.standard_normal(d), STEPS, kind="geometric", rate=0.8)
    etas = eta0 / np.arange(1, STEPS + 1) ** alpha
    thetas = bed.sgd(rng.standard_normal(d), means, etas, runs=RUNS, batch=4, seed=seed, quantize=quantize)
    assert _descent_violations(bed, quantize, means, etas, thetas, with_bias=True, seed=seed) == []


@pytest.mark.control("quantized-descent")
def test_the_quantized_descent_check_fails_without_the_bias_term_for_a_link_decoding_with_the_wrong_codebook():
    """A two-code link whose decoder holds the codebook with its codes swapped (encoder and
    decoder on different codebook versions) sends the mirror of every input: the module learns
    the wrong sign. The claim's B_t covers it; with B_t = 0 the check fails."""
    bed = LogisticTestbed(np.array([0.5]), 1.0)
    means = mean_path(bed.m_star, bed.m_star, STEPS, kind="constant", rate=0.0)
    etas = 0.3 / np.arange(1, STEPS + 1) ** 0.6
    swapped = lambda x: -torch.sign(x) * 0.8  # noqa: E731  (codes -0.8, +0.8, decoded swapped)
    thetas = bed.sgd(np.zeros(1), means, etas, runs=RUNS, batch=4, seed=0, quantize=swapped)
    assert _descent_violations(bed, swapped, means, etas, thetas, with_bias=True, seed=0) == []
    assert len(_descent_violations(bed, swapped, means, etas, thetas, with_bias=False, seed=0)) >= 3
