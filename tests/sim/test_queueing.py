"""The pipeline in sync mode with Poisson arrivals and exponential stations is a Jackson
tandem network: each station behaves as an M/M/1 queue with the arrival rate, whose
utilization, mean number in system and mean sojourn are known in closed form."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dglsim.sim import simulate, spec_from_dict, summarize_trace

from .helpers import batch_means_se, sojourns

LAM = 0.5
N = 60_000


def _tandem(mus, seed=0):
    return spec_from_dict({
        "mode": "sync", "workers": len(mus), "steps": N, "seed": seed,
        "arrival": {"kind": "exponential", "mean": 1 / LAM},
        "compute": [{"kind": "exponential", "mean": 1 / mu} for mu in mus],
    })


@pytest.mark.parametrize("mus", [(1.0,), (1.0, 0.8, 1.25)], ids=["mm1", "tandem3"])
def test_stations_match_mm1_closed_forms(mus):
    """Tolerance: 4 batch-means standard errors for the sojourn (the series is autocorrelated),
    and 4 binomial-like errors sqrt(rho (1 - rho) / N) times a 10x correlation inflation for
    the utilization. The first 1,000 items are dropped as warm-up from an empty system."""
    result = simulate(_tandem(mus))
    metrics = summarize_trace(result.trace, len(mus))
    for j, mu in enumerate(mus):
        arrive, finish = sojourns(result.trace, j)
        w = (finish - arrive)[1000:]
        expected_w = 1 / (mu - LAM)
        assert abs(w.mean() - expected_w) < 4 * batch_means_se(w), (j, w.mean(), expected_w)
        rho = LAM / mu
        utilization = metrics["workers"][j]["utilization"]
        assert abs(utilization - rho) < 4 * 10 * np.sqrt(rho * (1 - rho) / N), (j, utilization, rho)
        # Little: mean number in system = lambda * W = rho / (1 - rho) for M/M/1
        number = LAM * w.mean()
        assert number == pytest.approx(rho / (1 - rho), rel=8 * batch_means_se(w) / expected_w)


@settings(max_examples=25, deadline=None)
@given(
    k=st.integers(1, 4),
    capacity=st.none() | st.integers(1, 3),
    cv=st.floats(0.1, 2.0),
    load=st.floats(0.3, 0.95),
    seed=st.integers(0, 2**16),
)
def test_littles_law_holds_exactly_on_every_run(k, capacity, cv, load, seed):
    """Over a run that starts and ends empty, the time integral of the number of items at a
    worker (arrived, not yet finished) equals the sum of their sojourns: L = lambda * W."""
    spec = spec_from_dict({
        "mode": "sync", "workers": k, "steps": 300, "seed": seed, "buffer": capacity,
        "arrival": {"kind": "exponential", "mean": 1.0},
        "compute": {"kind": "gamma", "mean": load, "cv": cv},
        "latency": {"kind": "exponential", "mean": 0.1},
    })
    result = simulate(spec)
    result.trace.validate(k)
    for j in range(k):
        arrive, finish = sojourns(result.trace, j)
        times = np.concatenate([arrive, finish])
        steps = np.concatenate([np.ones_like(arrive), -np.ones_like(finish)])
        order = np.lexsort((-steps, times))  # at equal times count the arrival first
        times, steps = times[order], steps[order]
        in_system = np.cumsum(steps)
        integral = float((in_system[:-1] * np.diff(times)).sum())
        total_sojourn = float((finish - arrive).sum())
        assert integral == pytest.approx(total_sojourn, rel=1e-9, abs=1e-9)
        lam = len(finish) / result.makespan
        assert integral / result.makespan == pytest.approx(lam * (finish - arrive).mean(), rel=1e-9)
