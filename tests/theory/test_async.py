"""The asynchronous extension: buffer laws are mixtures over stale producer versions; the
staleness the simulator's trace reports stays within what the buffer and delays imply."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dglsim.errors import InvalidArgument
from dglsim.sim import simulate, spec_from_dict
from dglsim.theory.staleness import async_staleness_bound, staleness_stats
from dglsim.theory.testbeds import LogisticTestbed

GRID = np.linspace(-12, 12, 48_001)


def _joint_l1(weights, means, m_star, sigma):
    """integral |q - q*| for the joint law of (x, y), q a mixture over versions s of the testbed
    law of mean means[s] (d = 1), by quadrature on a fine grid."""
    pdf = lambda m: np.exp(-((GRID - m) ** 2) / (2 * sigma**2)) / np.sqrt(2 * np.pi * sigma**2)  # noqa: E731
    total = 0.0
    for y in (-1, 1):
        mixture = sum(w * pdf(y * m) for w, m in zip(weights, means))
        total += 0.5 * np.abs(mixture - pdf(y * m_star)).sum() * (GRID[1] - GRID[0])
    return total


@pytest.mark.claim("async-mixture")
@given(st.lists(st.floats(-3, 3), min_size=1, max_size=6), st.integers(0, 2**16), st.floats(0.4, 2.0))
def test_the_distance_of_a_buffer_mixture_is_at_most_the_mixture_of_distances(means, seed, sigma):
    weights = np.random.default_rng(seed).dirichlet(np.ones(len(means)))
    bed = LogisticTestbed(np.array([1.0]), sigma)
    mixed = _joint_l1(weights, means, 1.0, sigma)
    per_version = bed.l1_distance(np.array(means)[:, None])
    assert mixed <= float(weights @ per_version) + 1e-6  # quadrature error of the grid
    assert mixed >= 0


@pytest.mark.control("async-mixture")
def test_the_mixture_check_fails_for_weights_that_do_not_sum_to_one():
    """The claim needs q_t to be a law: weights summing to 1/2 (a buffer that counts some items
    twice over and others not at all) put half the mass on no version, and the distance of the
    'mixture' exceeds the mixture of distances even when every version is the limit itself."""
    bed = LogisticTestbed(np.array([1.0]), 1.0)
    assert _joint_l1([1.0], [1.0], 1.0, 1.0) <= float(bed.l1_distance(np.array([[1.0]]))[0]) + 1e-6
    weights = np.array([0.25, 0.25])
    assert _joint_l1(weights, [1.0, 1.0], 1.0, 1.0) > float(weights @ bed.l1_distance(np.array([[1.0], [1.0]]))) + 0.4


@pytest.mark.claim("async-staleness")
@given(st.integers(1, 8), st.floats(0.002, 0.02), st.floats(0.0, 0.05), st.sampled_from([0.0, 0.25, 1.0]), st.integers(0, 2**16), st.sampled_from(["least_used", "uniform", "newest", "fifo"]))
def test_the_trace_never_reports_more_staleness_than_the_bound(capacity, c_min, latency_max, spread, seed, policy):
    """Producers draw compute times uniformly from [c_min, c_min (1 + 4 spread)], links a latency
    from [0, latency_max] (no bandwidth limit); every consumed item's staleness is within the bound."""
    compute = {"dist": "uniform", "loc": c_min, "scale": c_min * 4 * spread} if spread > 0 else c_min
    spec = spec_from_dict({"mode": "async", "workers": 3, "steps": 400, "seed": seed, "buffer": capacity,
                           "compute": [compute, compute, {"dist": "uniform", "loc": c_min, "scale": 3 * c_min}],
                           "latency": {"dist": "uniform", "loc": 0.0, "scale": latency_max} if latency_max > 0 else 0.0, "policy": policy})
    rows = simulate(spec).trace.to_array()
    starts = rows[(rows["action"] == "start") & (rows["worker"] > 0)]
    bound = async_staleness_bound(capacity, latency_max, c_min)
    assert starts["staleness"].max() <= bound
    assert staleness_stats(starts["staleness"])["tau_max"] <= bound


@pytest.mark.claim("async-staleness")
@pytest.mark.parametrize("latency", [0.005, 0.025])
def test_the_staleness_bound_is_reached(latency):
    """Constant times, a consumer 3x slower than its producer, FIFO sampling: the consumer takes
    the oldest of M buffered items while the newest ones are still on the link, so the bound is
    attained (it is tight)."""
    spec = spec_from_dict({"mode": "async", "workers": 2, "steps": 300, "buffer": 4, "policy": "fifo", "compute": [0.01, 0.03], "latency": latency})
    rows = simulate(spec).trace.to_array()
    starts = rows[(rows["action"] == "start") & (rows["worker"] == 1)]
    assert starts["staleness"].max() == async_staleness_bound(4, latency, 0.01)


@pytest.mark.control("async-staleness")
def test_a_reuse_cap_breaks_the_bound():
    """With max_reuse, consumed items leave the buffer, so newer items need not push an old one
    out: it can linger and be consumed far staler than M + floor(l_max / c_min). The bound's
    premise (items leave only by eviction) is needed."""
    spec = spec_from_dict({"mode": "async", "workers": 3, "steps": 400, "seed": 0, "buffer": 2, "max_reuse": 1,
                           "compute": [{"dist": "uniform", "loc": 0.015625, "scale": 0.015625}] * 2 + [{"dist": "uniform", "loc": 0.015625, "scale": 0.046875}]})
    rows = simulate(spec).trace.to_array()
    starts = rows[(rows["action"] == "start") & (rows["worker"] > 0)]
    assert starts["staleness"].max() > async_staleness_bound(2, 0.0, 0.015625)


def test_bad_settings_are_refused():
    with pytest.raises(InvalidArgument, match="'min_producer_time' of async_staleness_bound must be > 0"):
        async_staleness_bound(3, 0.0, 0.0)
    with pytest.raises(InvalidArgument, match="'capacity' of async_staleness_bound must be an int >= 1, got 0"):
        async_staleness_bound(0, 0.0, 1.0)
