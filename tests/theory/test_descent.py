"""The descent lemma and the corollary's bound on exact testbeds, with hypothesis drawing the
problem, the step-size schedule, the producer's convergence and the batch size."""

import numpy as np
import pytest
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


@pytest.mark.claim("descent-lemma")
@given(problems)
@settings(max_examples=25)
def test_descent_lemma_holds_at_every_step(p):
    bed, means, etas, thetas = _setup(p)
    L, G = bed.smoothness, bed.second_moment_bound(means)
    cs = bed.l1_distance(means)
    loss = bed.loss(thetas)  # (T+1, runs)
    grad2 = (bed.gradient(thetas) ** 2).sum(-1)
    for t in range(STEPS):
        slack = descent_slack(loss[t], loss[t + 1], grad2[t], etas[t], cs[t], L, G)  # per run
        assert slack.mean() >= -Z * slack.std(ddof=1) / np.sqrt(RUNS), (t, slack.mean())


@pytest.mark.claim("corollary-bound")
@given(problems)
@settings(max_examples=25)
def test_min_expected_gradient_norm_sits_under_the_corollary_bound(p):
    bed, means, etas, thetas = _setup(p)
    L, G = bed.smoothness, bed.second_moment_bound(means)
    grad2 = (bed.gradient(thetas[:-1]) ** 2).sum(-1)  # (T, runs)
    bound = corollary_bound(bed.loss(thetas[0, 0]) - bed.minimum(), L, G, etas, bed.l1_distance(means))
    # min over t of the Monte-Carlo mean, against the bound at each horizon; the minimum of means
    # is biased low, never high, so a 6 SE margin on the selected step keeps the check conservative
    for horizon in range(1, STEPS + 1):
        means_so_far = grad2[:horizon].mean(1)
        best = int(means_so_far.argmin())
        se = grad2[best].std(ddof=1) / np.sqrt(RUNS)
        assert means_so_far[best] - Z * se <= bound[horizon - 1]


@pytest.mark.claim("descent-lemma")
def test_descent_slack_is_the_inequality_of_one_step():
    assert descent_slack(1.0, 0.9, 0.5, 0.1, 0.0, 2.0, 1.0) == pytest.approx(1.0 - 0.05 + 0.01 - 0.9)
    assert descent_slack(1.0, 1.0, 0.0, 0.1, 0.25, 1.0, 2.0) == pytest.approx(np.sqrt(2) * 2 * 0.1 * 0.5 + 0.01)


@pytest.mark.claim("A1")
@pytest.mark.claim("A3")
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


@pytest.mark.claim("A2")
@pytest.mark.parametrize("alpha,a2", [(0.75, True), (1.0, True), (0.4, False), (1.5, False)])
def test_broken_step_sizes_are_detected(alpha, a2):
    etas = 0.5 / np.arange(1, 2001) ** alpha
    report = summability(etas, np.full(2000, 1e-3) / np.arange(1, 2001) ** 4)
    assert report.step_exponent == pytest.approx(alpha, abs=1e-6)
    assert report.a2 is a2


@pytest.mark.claim("A4")
@pytest.mark.claim("summability")
def test_a_producer_that_does_not_converge_breaks_a4_and_the_bound_stays_away_from_zero():
    bed = LogisticTestbed(np.array([1.0]), 1.0)
    etas = 0.5 / np.arange(1, 20001) ** 0.75
    converging = bed.l1_distance(mean_path(bed.m_star, np.array([2.0]), 20000, kind="polynomial", rate=2.0))[:20000]
    stuck = bed.l1_distance(mean_path(bed.m_star, np.array([2.0]), 20000, kind="constant", rate=0.0))[:20000]
    assert summability(etas, converging).a4 and summability(etas, converging).a4_summable_distance
    assert not summability(etas, stuck).a4
    G = bed.second_moment_bound(np.array([[2.0]]))
    good = corollary_bound(1.0, bed.smoothness, G, etas, converging)
    bad = corollary_bound(1.0, bed.smoothness, G, etas, stuck)
    # converging: the numerator (bound x sum eta_t) converges, so the bound falls like 1 / sum eta_t
    numerator = good * np.cumsum(etas)
    assert numerator[-1] < numerator[len(etas) // 2] * 1.01 and good[-1] < good[len(etas) // 2]
    # stuck: the bias term alone keeps the bound above sqrt(2) G sqrt(c) > 0 at every horizon
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


@pytest.mark.claim("rate")
def test_a_polynomially_converging_producer_meets_the_rate_premise():
    """On the testbed, m_t - m* = g (t+1)^-r gives c_t <= c0 (t+1)^-r with c0 = 2 g / (sigma sqrt(2 pi)),
    since 2 Phi(z) - 1 <= 2 phi(0) z."""
    bed = LogisticTestbed(np.array([0.5, 1.0]), 0.8)
    start = bed.m_star + np.array([1.5, 0.0])
    cs = bed.l1_distance(mean_path(bed.m_star, start, 5000, kind="polynomial", rate=1.3))
    t = np.arange(1, 5002)
    assert (cs <= 2 * 1.5 / (0.8 * np.sqrt(2 * np.pi)) * t**-1.3 + 1e-15).all()
