"""An independent SimPy implementation, fed the same replayed durations, gives the same
update finish times, event for event (to the 1e-12 rounding of SimPy's relative delays)."""

import numpy as np
import pytest

from dglsim.sim import simulate, spec_from_dict

from .helpers import finishes
from .simpy_reference import run_reference

K, STEPS = 4, 400


def _durations(seed):
    rng = np.random.default_rng(seed)
    compute = [list(rng.gamma(4.0, 0.25 * s, STEPS)) for s in (1.0, 1.6, 0.8, 1.2)]
    latency = [list(rng.exponential(0.3, STEPS)) for _ in range(K - 1)] + [[0.0] * STEPS]
    return compute, latency


def _spec(mode, compute, latency, **extra):
    return spec_from_dict({
        "mode": mode, "workers": K, "steps": STEPS,
        "compute": [{"kind": "replay", "values": c, "cycle": False} for c in compute],
        "latency": [{"kind": "replay", "values": lat, "cycle": False} for lat in latency[: K - 1]],
        **extra,
    })


CASES = [
    ("sync", {}),
    ("sync", {"buffer": 1}),
    ("sync", {"buffer": 3}),
    ("async", {"buffer": 1, "policy": "least_used"}),
    ("async", {"buffer": 5, "policy": "least_used", "max_reuse": 2}),
    ("async", {"buffer": 4, "policy": "fifo", "max_reuse": 1}),
    ("async", {"buffer": 4, "policy": "newest"}),
    ("sync", {"payload_bytes": 4000, "bandwidth": 1e4}),  # a slow link: transfers queue up
    ("sync", {"buffer": 2, "payload_bytes": 4000, "bandwidth": 1e4}),
    ("async", {"buffer": 3, "policy": "least_used", "payload_bytes": 4000, "bandwidth": 1e4}),
]


@pytest.mark.parametrize(("mode", "extra"), CASES, ids=[f"{m}-{e}" for m, e in CASES])
@pytest.mark.parametrize("seed", [0, 1])
def test_finish_times_equal_the_simpy_reference(mode, extra, seed):
    compute, latency = _durations(seed)
    ours = simulate(_spec(mode, compute, latency, **extra))
    transfer = extra.get("payload_bytes", 0) / extra.get("bandwidth", 1.0)
    ref = run_reference(mode, compute, latency, capacity=extra.get("buffer"), policy=extra.get("policy", "least_used"), max_reuse=extra.get("max_reuse"), transfer=transfer)
    for j in range(K):
        mine = finishes(ours.trace, j)["time"]
        assert len(mine) == len(ref[j])
        np.testing.assert_allclose(mine, ref[j], rtol=1e-12, atol=0)
