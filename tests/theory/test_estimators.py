"""The theory estimators against closed forms."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from dglsim.errors import InvalidArgument
from dglsim.theory.distances import code_histogram_tv, median_bandwidth, mmd2_unbiased
from dglsim.theory.moments import batch_gradient, gradient_moments, per_sample_gradients
from dglsim.theory.smoothness import hessian_top_eigenvalue, secant_smoothness


def test_power_iteration_finds_the_spectral_norm_of_a_quadratic():
    g = torch.Generator().manual_seed(0)
    q = torch.linalg.qr(torch.randn(20, 20, generator=g, dtype=torch.float64))[0]
    eig = torch.linspace(-1.0, 6.0, 20, dtype=torch.float64)
    a = q @ torch.diag(eig) @ q.T
    theta = torch.randn(20, dtype=torch.float64, requires_grad=True)
    est = hessian_top_eigenvalue(lambda: 0.5 * theta @ a @ theta, [theta], iters=500, tol=1e-10)
    assert est.converged and est.value == pytest.approx(6.0, rel=1e-6) and est.residual < 1e-3


def test_power_iteration_matches_the_logistic_regression_hessian():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(200, 5, generator=g, dtype=torch.float64)
    y = (torch.rand(200, generator=g) < 0.5).double()
    w = torch.randn(5, generator=g, dtype=torch.float64, requires_grad=True)
    loss = lambda: nn.functional.binary_cross_entropy_with_logits(x @ w, y)  # noqa: E731
    p = torch.sigmoid(x @ w).detach()
    hessian = x.T @ torch.diag(p * (1 - p)) @ x / 200
    est = hessian_top_eigenvalue(loss, [w], iters=1000, tol=1e-12)
    assert est.value == pytest.approx(float(torch.linalg.eigvalsh(hessian).max()), rel=1e-6)


def test_secants_of_a_quadratic_lie_within_its_spectrum():
    a = torch.diag(torch.tensor([0.5, 2.0, 3.0], dtype=torch.float64))
    g = torch.Generator().manual_seed(2)
    thetas = [torch.randn(3, generator=g, dtype=torch.float64) for _ in range(30)]
    s = secant_smoothness(thetas, [a @ t for t in thetas])
    assert s.shape == (29,) and (s >= 0.5 - 1e-12).all() and (s <= 3.0 + 1e-12).all()
    with pytest.raises(InvalidArgument, match="same length >= 2"):
        secant_smoothness(thetas[:1], thetas[:1])


def test_per_sample_gradients_of_least_squares_in_closed_form():
    g = torch.Generator().manual_seed(3)
    model = nn.Linear(4, 1, bias=False).double()
    x, y = torch.randn(50, 4, generator=g, dtype=torch.float64), torch.randn(50, 1, generator=g, dtype=torch.float64)
    per = per_sample_gradients(model, lambda out, t: 0.5 * (out - t).square().sum(), x, y)
    w = model.weight.detach()[0]
    expected = (x @ w - y[:, 0])[:, None] * x  # d/dw 0.5 (x.w - y)^2 = (x.w - y) x
    assert torch.allclose(per, expected)
    m = gradient_moments(per)
    assert m.second_moment == pytest.approx(float(expected.square().sum(1).mean()))
    assert m.variance == pytest.approx(float(((expected - expected.mean(0)) ** 2).sum() / 49))
    assert m.second_moment == pytest.approx(m.mean_norm2 + m.variance * 49 / 50)  # E||g||^2 = ||E g||^2 + Var (biased)
    # the mean of per-sample gradients is the batch gradient of the mean loss
    batch = batch_gradient(model, lambda out, t: 0.5 * (out - t).square().sum(1).mean(), x, y)
    assert torch.allclose(batch, expected.mean(0))


def test_mmd_is_near_zero_for_one_law_grows_with_a_shift_and_is_unbiased():
    g = torch.Generator().manual_seed(4)
    x, y = torch.randn(400, 2, generator=g), torch.randn(400, 2, generator=g)
    bw = median_bandwidth(x)
    assert 1.0 < bw < 2.5  # median distance of 2-d unit Gaussians: about 1.67
    same = mmd2_unbiased(x, y, bw)
    shifted = [mmd2_unbiased(x, y + s, bw) for s in (0.5, 1.0, 2.0)]
    assert abs(same) < 0.01 and shifted[0] < shifted[1] < shifted[2]
    # Closed form for unit Gaussians in d dims shifted by delta, kernel width b:
    # MMD^2 = 2 (b^2/(b^2+2))^(d/2) (1 - exp(-|delta|^2 / (2 (b^2 + 2)))); here d = 2, delta = (2, 2).
    # One estimate at n = 400 has standard deviation 0.031 (measured over 60 draws); the mean of
    # 10 draws is within 4 standard errors, 4 x 0.031 / sqrt(10) = 0.04.
    b = 1.6
    closed = 2 * (b**2 / (b**2 + 2)) * (1 - math.exp(-8.0 / (2 * (b**2 + 2))))
    draws = [mmd2_unbiased(torch.randn(400, 2, generator=g), torch.randn(400, 2, generator=g) + 2, b) for _ in range(10)]
    assert sum(draws) / 10 == pytest.approx(closed, abs=0.04)


def test_code_histogram_tv_bounds_the_total_variation_from_below():
    """Two unit-variance 1-d Gaussians 1 apart: TV = 2 Phi(1/2) - 1 = 0.383. Their histograms over
    any fixed cells can only be closer (data processing); with 20,000 samples and 8 cells the
    plug-in bias is about sqrt(8/20000) = 0.02."""
    g = torch.Generator().manual_seed(5)
    x, y = torch.randn(20000, 1, generator=g), torch.randn(20000, 1, generator=g) + 1
    tv = 2 * 0.5 * (1 + math.erf(0.5 / math.sqrt(2))) - 1
    codes = torch.linspace(-2, 3, 8)[:, None]
    est = code_histogram_tv(x, y, codes)
    assert 0.25 < est <= tv + 0.02
    assert code_histogram_tv(x, x, codes) == 0.0


def test_snapshots_bracket_the_run_and_keep_their_own_copies():
    """The first snapshot is the initial network, the last the trained one; every snapshot holds
    its own state and codecs (later training does not change them); step counts never fall."""
    from dglsim.data import BatchLoader, ImageSet
    from dglsim.models import NetworkSpec, build_network
    from dglsim.quant import Codec, QuantConfig, VQConfig
    from dglsim.sim import spec_from_dict
    from dglsim.theory.training import train_with_snapshots
    from dglsim.train import OptimConfig, TrainConfig

    g = torch.Generator().manual_seed(0)
    data = ImageSet(torch.randint(0, 256, (64, 3, 8, 8), generator=g, dtype=torch.uint8), torch.arange(64) % 10, tuple(map(str, range(10))), (0.5,) * 3, (0.25,) * 3)
    net = build_network(NetworkSpec(arch="authors_cnn", k=3, width=4, head="mlp", head_width=8, input_shape=(3, 8, 8)), seed=0)
    initial = {k: v.clone() for k, v in net.state_dict().items()}
    codecs = [Codec(QuantConfig(family="vq", vq=VQConfig(codes=4)), seed=j) for j in range(2)]
    spec = spec_from_dict({"mode": "async", "workers": 3, "steps": 8, "buffer": 2, "compute": [0.01, 0.01, 0.03]})
    run, snaps = train_with_snapshots(net, BatchLoader(data, 16, shuffle=True, augment=False, seed=0, drop_last=True), BatchLoader(data, 32, shuffle=False, augment=False),
                                      TrainConfig(epochs=2, batch_size=16, optim=OptimConfig(lr=0.05)), spec, interval=0.05, codecs=codecs)
    assert all(torch.equal(snaps[0].state[k], v) for k, v in initial.items())
    assert all(torch.equal(snaps[-1].state[k], v) for k, v in net.state_dict().items())
    assert snaps[0].steps == (0, 0, 0) and snaps[-1].steps == (8, 8, 8)
    assert all(all(a <= b for a, b in zip(s.steps, t.steps)) for s, t in zip(snaps, snaps[1:]))
    assert snaps[0].codecs[0].encodes == 0 and snaps[-1].codecs[0].encodes == codecs[0].encodes > 0
    assert snaps[1].codecs[0] is not codecs[0] and snaps[1].codecs[0].encodes < codecs[0].encodes
    assert len(run.updates["lr"]) == 24


def test_input_jacobian_norms_match_the_explicit_jacobian():
    """The power-iteration norm of d grad_theta l / dx against the spectral norm of the Jacobian
    torch.autograd.functional builds column by column, for a small two-layer model; at the
    segment's end points and midpoint, the largest."""
    from dglsim.theory.training import input_jacobian_norms

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2)).double()
    g = torch.Generator().manual_seed(5)
    x, xq = torch.randn(6, 4, generator=g, dtype=torch.float64), torch.randn(6, 4, generator=g, dtype=torch.float64)
    y = torch.tensor([0, 1, 0, 1, 1, 0])
    got = input_jacobian_norms(model, x, xq, y, iters=200)
    names = [n for n, _ in model.named_parameters()]

    def flat_gradient(z, label):
        out = nn.functional.cross_entropy(torch.func.functional_call(model, dict(model.named_parameters()), (z[None],)), label[None])
        return torch.cat([t.reshape(-1) for t in torch.autograd.grad(out, [dict(model.named_parameters())[n] for n in names], create_graph=True)])

    for i in range(6):
        norms = [torch.linalg.matrix_norm(torch.autograd.functional.jacobian(lambda z: flat_gradient(z, y[i]), x[i] + s * (xq[i] - x[i])), 2) for s in (0.0, 0.5, 1.0)]
        assert float(got[i]) == pytest.approx(float(max(norms)), rel=1e-6)


def test_power_law_decay_recovers_the_exponent_and_refuses_too_few_steps():
    from dglsim.theory.bounds import power_law_decay

    steps = np.array([0, 2, 4, 8, 16, 32])
    alpha, se, n = power_law_decay(steps, 3.0 * np.maximum(steps, 1) ** -1.4)
    assert alpha == pytest.approx(1.4) and se == pytest.approx(0.0, abs=1e-9) and n == 5  # step 0 is left out
    # log-normal noise of sd 0.1 on 40 points: the estimate within 4 standard errors of the truth
    rng = np.random.default_rng(0)
    t = np.arange(1, 41)
    alpha, se, _ = power_law_decay(t, t**-0.7 * np.exp(0.1 * rng.standard_normal(40)))
    assert abs(alpha - 0.7) <= 4 * se and 0 < se < 0.1
    assert np.isnan(power_law_decay([0, 4, 4, 8], [1.0, 0.5, 0.5, 0.2])[0])  # two distinct steps


def test_the_trajectory_bound_is_its_formula():
    from dglsim.theory.bounds import corollary_from_sums, trajectory_bound

    assert trajectory_bound(0.3, 0.2, 0.1, 0.5) == pytest.approx(1.2)
    assert corollary_from_sums(2.0, 3.0, 4.0, 0.5, 0.1, 0.2, 0.3, decoded_second_moment=1.5) == pytest.approx((2.0 + np.sqrt(2) * 4 * 0.2 + 2 * 0.3 + 3 * 1.5 / 2 * 0.1) / 0.5)


def test_held_out_bounds_from_the_run_itself_are_its_own_bounds():
    """Rows of a run with two horizons, rebuilt from themselves: the run's own bound and
    trajectory bound; rebuilt from a run with a larger L, the global bound grows by the curvature
    term's difference only."""
    from dglsim.theory.training import held_out_bounds

    def rows(L):
        out = [{"module": 0, "metric": m, "step": None, "value": v} for m, v in (("L_estimate", L), ("G_estimate", 4.0), ("G_decoded_estimate", 4.0), ("initial_loss", 2.0))]
        for step, scale in ((4, 1.0), (8, 2.0)):
            values = {"sum_eta": 0.4 * scale, "sum_eta2": 0.04 * scale, "sum_eta_sqrt_c": 0.1 * scale, "sum_eta_qbias": 0.0, "loss_drop": 0.5 * scale,
                      "traj_bias_sum": 0.05 * scale, "traj_curvature_sum": 0.01 * scale}
            values["bound"] = (2.0 + np.sqrt(2) * 4 * values["sum_eta_sqrt_c"] + L * 4 / 2 * values["sum_eta2"]) / values["sum_eta"]
            values["trajectory_bound"] = (values["loss_drop"] + values["traj_bias_sum"] + values["traj_curvature_sum"]) / values["sum_eta"]
            out += [{"module": 0, "metric": m, "step": step, "value": v} for m, v in values.items()]
        return out

    own = rows(3.0)
    by = {(r["metric"], r["step"]): r["value"] for r in own}
    held = {(r["metric"], r["step"]): r["value"] for r in held_out_bounds(own, own)}
    for step in (4, 8):
        assert held["held_out_bound", step] == pytest.approx(by["bound", step])
        assert held["held_out_trajectory_bound", step] == pytest.approx(by["trajectory_bound", step])
    larger = {(r["metric"], r["step"]): r["value"] for r in held_out_bounds(own, rows(5.0))}
    assert larger["held_out_bound", 8] - by["bound", 8] == pytest.approx(2.0 * 4 / 2 * 0.08 / 0.8)
