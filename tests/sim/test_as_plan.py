"""Synchronous DGL as a plan: a sync spec run on the plan executor gives the pipeline simulator's
trace byte for byte, on random specs (jitter families, queue bounds, links, slowdowns, seeds);
what a plan cannot carry is refused by name."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dglsim.errors import InvalidArgument
from dglsim.schedule import run_plan
from dglsim.sim import simulate, spec_from_dict
from dglsim.sim.as_plan import run_sync_as_plan, sync_plan
from dglsim.sim.streams import worker_streams
from dglsim.sim.trace import Trace
from tests.sim.test_kernel import DELAYS


@st.composite
def sync_specs(draw):
    k = draw(st.integers(1, 5))
    doc = {"mode": "sync", "workers": k, "steps": draw(st.integers(1, 120)), "seed": draw(st.integers(0, 2**31)),
           "compute": draw(st.lists(DELAYS, min_size=k, max_size=k)),
           "slowdown": draw(st.lists(st.floats(0.5, 3.0), min_size=k, max_size=k))}
    if draw(st.booleans()):
        doc["buffer"] = draw(st.integers(1, 4))
    if draw(st.booleans()):
        doc["latency"] = draw(st.floats(0.0, 0.02))
    if draw(st.booleans()):
        doc["bandwidth"] = draw(st.floats(1e5, 1e9))
        doc["payload_bytes"] = draw(st.integers(0, 10**5))
    return spec_from_dict(doc)


@settings(max_examples=60, deadline=None)
@given(sync_specs())
def test_sync_dgl_as_a_plan_writes_the_pipelines_trace_byte_for_byte(spec):
    assert run_sync_as_plan(spec).trace.text() == simulate(spec, engine="python").trace.text()


def test_the_queue_bound_is_part_of_the_identity():
    """Negative control: the same plan and streams without back-pressure write another trace
    (no block rows, later items less stale) when the spec's queues fill."""
    spec = spec_from_dict({"mode": "sync", "workers": 3, "steps": 60, "buffer": 1, "compute": [0.01, 0.01, 0.03], "latency": 0.001})
    reference = simulate(spec, engine="python").trace
    assert "block" in {r[2] for r in reference.rows}
    plan, costs = sync_plan(spec)
    unbounded = Trace(run_plan(plan, costs, durations=worker_streams(spec).compute, trace=True).trace_rows)
    assert unbounded != reference and "block" not in {r[2] for r in unbounded.rows}
    assert run_sync_as_plan(spec).trace == reference


@pytest.mark.parametrize("doc, match", [
    ({"mode": "async", "buffer": 2}, "mode must be 'sync' \\(async DGL samples its buffers at run time: not a plan\\), got 'async'"),
    ({"mode": "sync", "latency": {"kind": "lognormal", "mean": 0.01, "cv": 0.5}}, "latency must be one constant for every link"),
    ({"mode": "sync", "arrival": {"kind": "exponential", "mean": 0.02}}, "arrival must be absent"),
])
def test_what_a_plan_cannot_carry_is_named(doc, match):
    spec = spec_from_dict({"workers": 3, "steps": 5, "compute": 0.01} | doc)
    with pytest.raises(InvalidArgument, match=match):
        sync_plan(spec)


def test_trace_rows_need_the_dgl_plan():
    from dglsim.schedule import ActionCosts, build_plan

    with pytest.raises(InvalidArgument, match="'trace' of run_plan needs a plan of local steps"):
        run_plan(build_plan("gpipe", 2, 2, 4, 2), ActionCosts((0.01, 0.01)), trace=True)
