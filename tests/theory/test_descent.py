"""The descent lemma and the corollary's bound on exact testbeds, with hypothesis drawing the
problem, the step-size schedule, the producer's convergence and the batch size."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dglsim.errors import InvalidArgument
from dglsim.theory.bounds import corollary_bound, descent_slack, rate_bound, summability, tail_exponent
from dglsim.theory.testbeds import LogisticTestbed, mean_path

RUNS = 1000  # independent SGD runs: expectations are their means
STEPS = 60
# A Monte-Carlo check passes when the mean slack is above -Z standard errors. Z = 6: a one-sided
# normal tail of 1e-9 per check, so the 60 steps x 40 examples of a run of the suite have a
# false-failure probability under 3e-6.
Z = 6.0

problems = st.fixed_dictionaries({
    "d": st.integers(1, 3),
    "sigma": st.floats(0.5, 2.0),
    "m_norm": st.floats(0.3, 2.0),
    "start_gap": st.floats(0.0, 3.0),
    "path": st.sampled_from(["geometric", "polynomial"]),
    "rate": st.floats(0.5, 3.0),
    "eta0": st.floats(0.05, 1.0),
    "alpha": st.floats(0.55, 1.0),
    "batch": st.sampled_from([1, 4, 16]),
    "seed": st.integers(0, 2**16),
})


def _setup(p):
    rng = np.random.default_rng(p["seed"])
    direction = rng.standard_normal(p["d"])
    m_star = p["m_norm"] * direction / np.linalg.norm(direction)
    other = rng.standard_normal(p["d"])
    start = m_star + p["start_gap"] * other / np.linalg.norm(other)
    rate = min(p["rate"] / 3.2, 0.95) if p["path"] == "geometric" else p["rate"]  # geometric ratio in (0, 0.95]
    means = mean_path(m_star, start, STEPS, kind=p["path"], rate=rate)
    etas = p["eta0"] / np.arange(1, STEPS + 1) ** p["alpha"]
    bed = LogisticTestbed(m_star, p["sigma"])
    thetas = bed.sgd(rng.standard_normal(p["d"]), means, etas, runs=RUNS, batch=p["batch"], seed=p["seed"])
    return bed, means, etas, thetas


def _rejects(slack: np.ndarray) -> bool:
    """Whether the runs reject slack >= 0 in expectation: their mean below -Z standard errors."""
    return bool(slack.mean() < -Z * slack.std(ddof=1) / np.sqrt(slack.size))


def _descent_violations(bed, etas, thetas, cs, smoothness, second_moment) -> list[int]:
    """The steps whose mean slack of the descent lemma is below -Z standard errors: where the
    Monte-Carlo runs reject the inequality."""
    loss = bed.loss(thetas)  # (T+1, runs)
    grad2 = (bed.gradient(thetas) ** 2).sum(-1)
    return [t for t in range(len(etas)) if _rejects(descent_slack(loss[t], loss[t + 1], grad2[t], etas[t], cs[t], smoothness, second_moment))]


@pytest.mark.claim("descent-lemma")
@given(problems)
@settings(max_examples=25)
def test_descent_lemma_holds_at_every_step(p):
    bed, means, etas, thetas = _setup(p)
    assert _descent_violations(bed, etas, thetas, bed.l1_distance(means), bed.smoothness, bed.second_moment_bound(means)) == []


def _near_the_origin():
    """A problem where the curvature term is within 4x of the realized one: theta starts at 0,
    where s(u)(1 - s(u)) = 1/4 makes the Hessian E[x x^T] / 4, the L of the bound, and the classes
    nearly overlap (|m*| = 0.1), so the gradient is small and large steps only add curvature."""
    bed = LogisticTestbed(np.array([0.1, 0.0, 0.0]), 1.0)
    means = mean_path(bed.m_star, bed.m_star, STEPS, kind="constant", rate=0.0)
    etas = 1.0 / np.arange(1, STEPS + 1) ** 0.6
    return bed, means, etas, bed.sgd(np.zeros(3), means, etas, runs=RUNS, batch=1, seed=0)


@pytest.mark.control("descent-lemma")
def test_the_descent_check_fails_with_the_smoothness_underestimated_tenfold():
    bed, means, etas, thetas = _near_the_origin()
    cs, G = bed.l1_distance(means), bed.second_moment_bound(means)
    assert _descent_violations(bed, etas, thetas, cs, bed.smoothness, G) == []
    assert len(_descent_violations(bed, etas, thetas, cs, bed.smoothness / 10, G)) >= 3


def _stuck_producer(steps: int, theta0: float, runs: int):
    """The producer never converges: its class mean stays at -2 while the limit's is +0.5, so
    the module learns the wrong sign (c_t = 0.79 at every step)."""
    bed = LogisticTestbed(np.array([0.5]), 1.0)
    means = mean_path(bed.m_star, np.array([-2.0]), steps, kind="constant", rate=0.0)
    etas = 1.0 / np.arange(1, steps + 1) ** 0.6
    return bed, means, etas, bed.sgd(np.array([theta0]), means, etas, runs=runs, batch=4, seed=0)


@pytest.mark.control("descent-lemma")
def test_the_descent_check_fails_without_the_bias_term_for_a_producer_far_from_its_limit():
    bed, means, etas, thetas = _stuck_producer(STEPS, 0.0, RUNS)
    cs, L, G = bed.l1_distance(means), bed.smoothness, bed.second_moment_bound(means)
    assert _descent_violations(bed, etas, thetas, cs, L, G) == []
    assert len(_descent_violations(bed, etas, thetas, np.zeros_like(cs), L, G)) >= 3


def _corollary_violations(grad2: np.ndarray, bound: np.ndarray) -> list[int]:
    """The horizons T where min_{t<T} of the Monte-Carlo mean of |grad L(theta_t)|^2, less Z
    standard errors at the selected step, is above the bound. The minimum of means is biased low,
    never high, so the margin on the selected step keeps the check conservative."""
    out = []
    for horizon in range(1, len(bound) + 1):
        means_so_far = grad2[:horizon].mean(1)
        best = int(means_so_far.argmin())
        se = grad2[best].std(ddof=1) / np.sqrt(grad2.shape[1])
        if means_so_far[best] - Z * se > bound[horizon - 1]:
            out.append(horizon)
    return out


@pytest.mark.claim("corollary-bound")
@given(problems)
@settings(max_examples=25)
def test_min_expected_gradient_norm_sits_under_the_corollary_bound(p):
    bed, means, etas, thetas = _setup(p)
    grad2 = (bed.gradient(thetas[:-1]) ** 2).sum(-1)  # (T, runs)
    bound = corollary_bound(bed.loss(thetas[0, 0]) - bed.minimum(), bed.smoothness, bed.second_moment_bound(means), etas, bed.l1_distance(means))
    assert _corollary_violations(grad2, bound) == []


@pytest.mark.control("corollary-bound")
def test_the_corollary_check_fails_when_the_c_term_is_dropped_for_a_producer_that_does_not_converge():
    """Started at the wrong optimum, the module stays there (|grad L|^2 about 0.44), while the
    bound without its c-term falls like 1 / sum eta_t below it within 3,000 steps."""
    bed, means, etas, thetas = _stuck_producer(3000, -4.0, 200)
    grad2 = (bed.gradient(thetas[:-1]) ** 2).sum(-1)
    gap, L, G, cs = bed.loss(thetas[0, 0]) - bed.minimum(), bed.smoothness, bed.second_moment_bound(means), bed.l1_distance(means)
    assert _corollary_violations(grad2, corollary_bound(gap, L, G, etas, cs)) == []
    assert len(_corollary_violations(grad2, corollary_bound(gap, L, G, etas, np.zeros_like(cs)))) > 1000


@pytest.mark.claim("descent-lemma")
def test_descent_slack_is_the_inequality_of_one_step():
    assert descent_slack(1.0, 0.9, 0.5, 0.1, 0.0, 2.0, 1.0) == pytest.approx(1.0 - 0.05 + 0.01 - 0.9)
    assert descent_slack(1.0, 1.0, 0.0, 0.1, 0.25, 1.0, 2.0) == pytest.approx(np.sqrt(2) * 2 * 0.1 * 0.5 + 0.01)


def test_the_testbed_constants_are_exact():
    bed = LogisticTestbed(np.array([1.0, -0.5]), 0.7)
    theta = np.array([0.4, 0.9])
    # the quadrature objective against a Monte-Carlo average of 400,000 samples (SE < 1e-3)
    rng = np.random.default_rng(0)
    y = rng.choice([-1.0, 1.0], 400_000)
    x = y[:, None] * bed.m_star + 0.7 * rng.standard_normal((400_000, 2))
    assert bed.loss(theta) == pytest.approx(np.logaddexp(0, -y * (x @ theta)).mean(), abs=4e-3)
    eps = 1e-6
    fd = [(bed.loss(theta + eps * e) - bed.loss(theta - eps * e)) / (2 * eps) for e in np.eye(2)]
    assert np.allclose(bed.gradient(theta), fd, atol=1e-7)
    # L bounds the Hessian's top eigenvalue (finite differences of the exact gradient)
    hessian = np.array([(bed.gradient(theta + eps * e) - bed.gradient(theta - eps * e)) / (2 * eps) for e in np.eye(2)])
    assert np.linalg.eigvalsh((hessian + hessian.T) / 2).max() <= bed.smoothness
    # the L1 distance between the joint laws of (x, y) for two means, by quadrature on a grid (d = 1):
    # sum over y of P(y) times the L1 distance of the class-conditional Gaussians
    one = LogisticTestbed(np.array([1.0]), 0.7)
    grid = np.linspace(-8, 8, 200_001)
    pdf = lambda m: np.exp(-((grid - m) ** 2) / (2 * 0.49)) / np.sqrt(2 * np.pi * 0.49)  # noqa: E731
    l1 = sum(0.5 * np.abs(pdf(y * 1.6) - pdf(y * 1.0)).sum() * (grid[1] - grid[0]) for y in (-1, 1))
    assert one.l1_distance(np.array([[1.6]]))[0] == pytest.approx(l1, abs=1e-6)


def _hessian_top(bed, theta: np.ndarray, eps: float = 1e-5) -> float:
    """The top eigenvalue of the exact objective's Hessian at theta (central differences of the
    quadrature gradient; their error is O(eps^2), under 1e-8 here)."""
    hessian = np.array([(bed.gradient(theta + eps * e) - bed.gradient(theta - eps * e)) / (2 * eps) for e in np.eye(bed.d)])
    return float(np.linalg.eigvalsh((hessian + hessian.T) / 2).max())


thetas_and_beds = st.fixed_dictionaries({
    "d": st.integers(1, 3), "sigma": st.floats(0.3, 2.0), "m_norm": st.floats(0.0, 2.0),
    "theta_norm": st.floats(0.0, 6.0), "seed": st.integers(0, 2**16),
})


def _bed_and_theta(p):
    rng = np.random.default_rng(p["seed"])
    m, theta = rng.standard_normal(p["d"]), rng.standard_normal(p["d"])
    return LogisticTestbed(p["m_norm"] * m / np.linalg.norm(m), p["sigma"]), p["theta_norm"] * theta / np.linalg.norm(theta)


@pytest.mark.claim("A1")
@given(thetas_and_beds)
def test_the_hessian_is_within_the_smoothness_constant_at_every_theta(p):
    bed, theta = _bed_and_theta(p)
    assert _hessian_top(bed, theta) <= bed.smoothness + 1e-7


@pytest.mark.control("A1")
def test_the_smoothness_check_fails_for_the_constant_of_a_narrower_law():
    """At theta = 0 the Hessian is E[x x^T] / 4, exactly L: the L of the same means with sigma
    halved (a wrong law) is exceeded there."""
    bed = LogisticTestbed(np.array([0.6, 0.0]), 1.0)
    narrower = LogisticTestbed(bed.m_star, 0.5)
    assert _hessian_top(bed, np.zeros(2)) <= bed.smoothness + 1e-7
    assert _hessian_top(bed, np.zeros(2)) > narrower.smoothness + 0.1


SAMPLES = 20_000  # per Monte-Carlo second moment


def _second_moment_excess(bed, mean: np.ndarray, theta: np.ndarray, bound: float, seed: int) -> float:
    """The Monte-Carlo E_q |grad l(theta)|^2 under the law of class mean `mean`, less Z standard
    errors, less the bound: > 0 where the samples reject E|grad l|^2 <= bound."""
    x, y = bed.sample(mean, SAMPLES, torch.Generator().manual_seed(seed))
    norms = LogisticTestbed.sample_gradients(torch.as_tensor(theta), x, y).square().sum(-1).numpy()
    return float(norms.mean() - Z * norms.std(ddof=1) / np.sqrt(SAMPLES) - bound)


@pytest.mark.claim("A3")
@given(thetas_and_beds, st.floats(0.0, 3.0), st.floats(0.0, 1.0))
@settings(max_examples=40)
def test_the_second_moment_is_within_g_at_every_theta_under_every_law_of_the_path(p, start_gap, where):
    """G is a bound over the producer's whole path and the limit; here checked at a drawn theta,
    under the law at a drawn point of a geometric path and under the limit."""
    bed, theta = _bed_and_theta(p)
    rng = np.random.default_rng(p["seed"] + 1)
    other = rng.standard_normal(p["d"])
    means = mean_path(bed.m_star, bed.m_star + start_gap * other / np.linalg.norm(other), 30, kind="geometric", rate=0.8)
    G = bed.second_moment_bound(means)
    for mean in (means[int(where * 30)], bed.m_star):
        assert _second_moment_excess(bed, mean, theta, G, p["seed"]) <= 0


@pytest.mark.control("A3")
def test_the_second_moment_check_fails_for_a_g_that_forgets_the_producers_path():
    """G computed for the limit alone, checked under a producer's law of larger mean at a theta
    that misclassifies it (s(-u) near 1, so |grad l| near |x|)."""
    bed = LogisticTestbed(np.array([0.5, 0.0]), 0.5)
    far = np.array([-3.0, 0.0])
    theta = np.array([5.0, 0.0])
    assert _second_moment_excess(bed, far, theta, bed.second_moment_bound(np.array([far])), 0) <= 0
    assert _second_moment_excess(bed, far, theta, bed.second_moment_bound(np.array([bed.m_star])), 0) > 1.0


@pytest.mark.claim("A2")
@pytest.mark.parametrize("alpha", [0.55, 0.75, 1.0])
def test_robbins_monro_step_sizes_are_recognised(alpha):
    etas = 0.5 / np.arange(1, 2001) ** alpha
    report = summability(etas, np.full(2000, 1e-3) / np.arange(1, 2001) ** 4)
    assert report.step_exponent == pytest.approx(alpha, abs=1e-6)
    assert report.a2


@pytest.mark.control("A2")
@pytest.mark.parametrize("alpha", [0.0, 0.4, 1.5])
def test_broken_step_sizes_are_detected(alpha):
    """Constant steps and t^-0.4 have sum eta_t^2 = inf; t^-1.5 has sum eta_t < inf."""
    etas = 0.5 / np.arange(1, 2001) ** alpha
    assert not summability(etas, np.full(2000, 1e-3) / np.arange(1, 2001) ** 4).a2


def _producers(steps: int):
    bed = LogisticTestbed(np.array([1.0]), 1.0)
    etas = 0.5 / np.arange(1, steps + 1) ** 0.75
    converging = bed.l1_distance(mean_path(bed.m_star, np.array([2.0]), steps, kind="polynomial", rate=2.0))[:steps]
    stuck = bed.l1_distance(mean_path(bed.m_star, np.array([2.0]), steps, kind="constant", rate=0.0))[:steps]
    return bed, etas, converging, stuck


@pytest.mark.claim("A4")
def test_a_converging_producer_meets_a4():
    _, etas, converging, _ = _producers(20000)
    assert summability(etas, converging).a4 and summability(etas, converging).a4_summable_distance


@pytest.mark.control("A4")
def test_a_producer_that_does_not_converge_breaks_a4():
    _, etas, _, stuck = _producers(20000)
    assert not summability(etas, stuck).a4 and not summability(etas, stuck).a4_summable_distance


def _bound_goes_to_zero(bound: np.ndarray, etas: np.ndarray) -> bool:
    """The summability claim's conclusion on a finite run: the numerator (bound x sum eta_t) has
    stopped growing over the second half (within 1%) and the bound itself falls."""
    numerator = bound * np.cumsum(etas)
    half = len(etas) // 2
    return bool(numerator[-1] < numerator[half] * 1.01 and bound[-1] < bound[half])


@pytest.mark.claim("summability")
def test_under_a2_and_a4_the_bound_goes_to_zero():
    bed, etas, converging, _ = _producers(20000)
    G = bed.second_moment_bound(np.array([[2.0]]))
    assert _bound_goes_to_zero(corollary_bound(1.0, bed.smoothness, G, etas, converging), etas)


@pytest.mark.control("summability")
def test_a_producer_that_does_not_converge_keeps_the_bound_away_from_zero():
    bed, etas, _, stuck = _producers(20000)
    G = bed.second_moment_bound(np.array([[2.0]]))
    bad = corollary_bound(1.0, bed.smoothness, G, etas, stuck)
    assert not _bound_goes_to_zero(bad, etas)
    # the bias term alone keeps the bound above sqrt(2) G sqrt(c) > 0 at every horizon
    assert (bad >= np.sqrt(2) * G * np.sqrt(stuck[0])).all()


@pytest.mark.claim("summability")
def test_the_weaker_a4_holds_where_sum_c_t_diverges():
    """c_t ~ t^-1.5 with eta_t ~ t^-0.75: sum c_t < inf; c_t ~ t^-0.8: sum c_t = inf, yet
    sum eta_t sqrt(c_t) ~ sum t^-1.15 < inf, which is all the proof needs."""
    t = np.arange(1, 5001, dtype=float)
    etas = t**-0.75
    report = summability(etas, t**-0.8)
    assert report.a4 and not report.a4_summable_distance
    assert tail_exponent(t**-0.8) == pytest.approx(0.8)


def test_bad_sequences_are_refused():
    with pytest.raises(InvalidArgument, match="'etas' of corollary_bound must be a non-empty 1-d sequence of finite reals >= 0"):
        corollary_bound(1.0, 1.0, 1.0, [-0.1], [0.0])
    with pytest.raises(InvalidArgument, match="'cs' of corollary_bound must hold one c_t per step \\(2\\), got 1"):
        corollary_bound(1.0, 1.0, 1.0, [0.1, 0.1], [0.0])
    with pytest.raises(InvalidArgument, match="'biases' of corollary_bound must hold one B_t per step \\(2\\), got 1"):
        corollary_bound(1.0, 1.0, 1.0, [0.1, 0.1], [0.0, 0.0], biases=[0.1])


def test_the_quantized_bound_adds_the_bias_term_and_curves_with_the_decoded_moment():
    """proofs/06: [gap + sqrt(2) G sum eta sqrt(c) + sqrt(G) sum eta B + (L G~ / 2) sum eta^2] / sum eta,
    written out for two steps; B = 0 and G~ = G give the unquantized bound."""
    etas, cs, bs, gap, L, G, Gq = np.array([0.3, 0.2]), np.array([0.04, 0.01]), np.array([0.5, 0.25]), 2.0, 3.0, 4.0, 1.5
    bound = corollary_bound(gap, L, G, etas, cs, biases=bs, decoded_second_moment=Gq)
    for T in (1, 2):
        e, c, b = etas[:T], cs[:T], bs[:T]
        expected = (gap + np.sqrt(2) * G * (e * np.sqrt(c)).sum() + np.sqrt(G) * (e * b).sum() + L * Gq / 2 * (e**2).sum()) / e.sum()
        assert bound[T - 1] == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(corollary_bound(gap, L, G, etas, cs, biases=[0.0, 0.0], decoded_second_moment=G), corollary_bound(gap, L, G, etas, cs), rtol=1e-12)


@pytest.mark.claim("rate")
@given(st.floats(0.55, 1.0), st.floats(0.3, 4.0), st.floats(0.05, 1.0), st.floats(0.01, 2.0))
def test_the_corollary_bound_falls_at_the_stated_rate(alpha, beta, eta0, c0):
    if alpha + beta / 2 <= 1.01:
        beta = 2 * (1.01 - alpha) + 0.1
    t = np.arange(1, 4001, dtype=float)
    etas, cs = eta0 * t**-alpha, c0 * t**-beta
    horizons = np.arange(1, 4001)
    exact = corollary_bound(1.0, 0.5, 2.0, etas, cs)
    rate = rate_bound(1.0, 0.5, 2.0, eta0=eta0, alpha=alpha, c0=c0, beta=beta, horizons=horizons)
    assert (exact <= rate * (1 + 1e-9)).all()
    # the rate itself: T^(1-alpha) x bound (log T x bound at alpha = 1) stays bounded
    scale = np.log(horizons + 1) if alpha == 1 else (horizons + 1.0) ** (1 - alpha)
    assert (rate * scale)[-1] <= (rate * scale)[len(horizons) // 2] * 1.01


@pytest.mark.control("rate")
def test_the_rate_check_fails_for_a_producer_slower_than_its_premise():
    """The rate bound computed for c_t <= c0 t^-2 while c_t actually falls like t^-0.5: the sum
    of eta_t sqrt(c_t) grows like log T instead of converging, and the corollary bound of the
    true sequence leaves the stated rate's bound from the first horizons on."""
    t = np.arange(1, 4001, dtype=float)
    etas = 0.5 * t**-0.75
    rate = rate_bound(1.0, 0.5, 2.0, eta0=0.5, alpha=0.75, c0=1.0, beta=2.0, horizons=np.arange(1, 4001))
    assert (corollary_bound(1.0, 0.5, 2.0, etas, t**-2.0) <= rate * (1 + 1e-9)).all()
    assert (corollary_bound(1.0, 0.5, 2.0, etas, t**-0.5) > rate * (1 + 1e-9)).mean() > 0.9


@pytest.mark.claim("rate")
def test_a_polynomially_converging_producer_meets_the_rate_premise():
    """On the testbed, m_t - m* = g (t+1)^-r gives c_t <= c0 (t+1)^-r with c0 = 2 g / (sigma sqrt(2 pi)),
    since 2 Phi(z) - 1 <= 2 phi(0) z."""
    bed = LogisticTestbed(np.array([0.5, 1.0]), 0.8)
    start = bed.m_star + np.array([1.5, 0.0])
    cs = bed.l1_distance(mean_path(bed.m_star, start, 5000, kind="polynomial", rate=1.3))
    t = np.arange(1, 5002)
    assert (cs <= 2 * 1.5 / (0.8 * np.sqrt(2 * np.pi)) * t**-1.3 + 1e-15).all()


def _trajectory_terms(bed, means, etas, thetas):
    """Per run and step, the trajectory form's realized terms on the testbed, exactly: the bias
    |grad L(theta_t)| |grad L_t(theta_t) - grad L(theta_t)| (L_t the loss under the step's law:
    the testbed of mean m_t) and the curvature term eta_t^2 g^T Hbar g / 2 = L(theta_{t+1}) -
    L(theta_t) + eta_t grad L(theta_t).g_t (Taylor with integral remainder: exact)."""
    grad = bed.gradient(thetas)  # (T+1, runs, d)
    loss = bed.loss(thetas)
    bias, curvature = [], []
    for t, _eta in enumerate(etas):
        moved = LogisticTestbed(means[t], bed.sigma).gradient(thetas[t])
        bias.append(np.linalg.norm(grad[t], axis=-1) * np.linalg.norm(moved - grad[t], axis=-1))
        step = thetas[t + 1] - thetas[t]  # = -eta g_t
        curvature.append(loss[t + 1] - loss[t] - (grad[t] * step).sum(-1))
    return loss, (grad[:-1] ** 2).sum(-1), np.array(bias), np.array(curvature)


def _trajectory_violations(loss, grad2, bias, curvature, etas) -> list[int]:
    """Horizons T where the runs reject E[sum_{t<T} eta_t |grad L|^2] <= E[L_0 - L_T + sum eta_t bias_t + curvature sums]
    (per-run slack, mean below -Z standard errors)."""
    def slack(horizon):  # per run
        rhs = loss[0] - loss[horizon] + (etas[:horizon, None] * bias[:horizon]).sum(0) + curvature[:horizon].sum(0)
        return rhs - (etas[:horizon, None] * grad2[:horizon]).sum(0)

    return [horizon for horizon in range(1, len(etas) + 1) if _rejects(slack(horizon))]


@pytest.mark.claim("trajectory-bound")
@given(problems)
@settings(max_examples=15)
def test_the_trajectory_form_holds_with_the_realized_terms(p):
    bed, means, etas, thetas = _setup(p)
    assert _trajectory_violations(*_trajectory_terms(bed, means, etas, thetas), etas) == []


@pytest.mark.control("trajectory-bound")
def test_the_trajectory_check_fails_without_the_bias_term_for_a_producer_far_from_its_limit():
    bed, means, etas, thetas = _stuck_producer(STEPS, 0.0, RUNS)
    loss, grad2, bias, curvature = _trajectory_terms(bed, means, etas, thetas)
    assert _trajectory_violations(loss, grad2, bias, curvature, etas) == []
    assert len(_trajectory_violations(loss, grad2, np.zeros_like(bias), curvature, etas)) >= 3


def test_the_rate_bound_is_its_formula_and_refuses_what_a2_and_a4_exclude():
    """Written out with Riemann's zeta at two horizons, for alpha < 1 and alpha = 1; alpha = 1/2
    (sum eta_t^2 diverges) and alpha + beta/2 = 1 are refused."""
    from scipy.special import zeta

    gap, L, G, eta0, c0 = 1.5, 0.5, 2.0, 0.3, 0.8
    for alpha, beta in ((0.75, 1.0), (1.0, 0.5)):
        numerator = gap + np.sqrt(2) * G * eta0 * np.sqrt(c0) * zeta(alpha + beta / 2) + L * G / 2 * eta0**2 * zeta(2 * alpha)
        horizons = np.array([10.0, 1000.0])
        steps = eta0 * np.log(horizons + 1) if alpha == 1 else eta0 * ((horizons + 1) ** (1 - alpha) - 1) / (1 - alpha)
        np.testing.assert_allclose(rate_bound(gap, L, G, eta0=eta0, alpha=alpha, c0=c0, beta=beta, horizons=horizons), numerator / steps, rtol=1e-12)
    with pytest.raises(InvalidArgument, match=r"'alpha' of rate_bound must be in \(1/2, 1\] \(A2\), got 0.5"):
        rate_bound(gap, L, G, eta0=eta0, alpha=0.5, c0=c0, beta=3.0, horizons=[10])
    with pytest.raises(InvalidArgument, match=r"'beta' of rate_bound must make alpha \+ beta/2 > 1 \(A4\), got alpha = 0.75, beta = 0.5"):
        rate_bound(gap, L, G, eta0=eta0, alpha=0.75, c0=c0, beta=0.5, horizons=[10])


def test_tail_exponents_of_exact_sequences():
    t = np.arange(1, 201, dtype=float)
    assert tail_exponent(3.0 * t**-1.7) == pytest.approx(1.7, abs=1e-9)
    assert tail_exponent(np.ones(200)) == pytest.approx(0.0, abs=1e-9)  # a tail of ones is not a tail of zeros
    assert tail_exponent(np.r_[t[:100] ** -1.0, np.zeros(100)]) == float("inf")  # reaches 0: faster than any power
    with pytest.raises(InvalidArgument, match="'values' of tail_exponent must be a non-empty 1-d sequence of finite reals >= 0"):
        tail_exponent([1.0, -1.0])
    with pytest.raises(InvalidArgument, match="'etas' of summability must be a non-empty 1-d sequence"):
        summability([np.nan], [0.1])
    with pytest.raises(InvalidArgument, match="'cs' of summability must be a non-empty 1-d sequence"):
        summability([0.1], [-0.1])


def test_the_decay_fits_standard_error_is_the_regressions():
    from scipy import stats as scipy_stats

    from dglsim.theory.bounds import power_law_decay

    rng = np.random.default_rng(3)
    steps = np.arange(1, 13, dtype=float)
    values = steps**-0.9 * np.exp(0.2 * rng.standard_normal(12))
    alpha, se, n = power_law_decay(steps, values)
    fit = scipy_stats.linregress(np.log(steps), np.log(values))
    assert (alpha, se, n) == (pytest.approx(-fit.slope), pytest.approx(fit.stderr), 12)
    assert np.isnan(power_law_decay([1, 2], [0.5, 0.2])[1])
