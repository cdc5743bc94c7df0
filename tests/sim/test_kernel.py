"""The compiled kernel gives the Python engine's trace, row for row and bit for bit, on random
specs of every mode; it falls back to the Python engine, with one warning, where numba is
missing; its chunks stream; and its item pool and event heap grow as a run needs."""

import importlib
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dglsim.errors import InvalidArgument
from dglsim.sim import jit, simulate, spec_from_dict

SIMULATE = importlib.import_module("dglsim.sim.simulate")  # the module (the package's `simulate` is the function)

DELAYS = st.one_of(
    st.floats(0.001, 0.05).map(lambda v: {"kind": "constant", "value": v}),
    st.tuples(st.floats(0.002, 0.05), st.floats(0.1, 2.0)).map(lambda m: {"kind": "gamma", "mean": m[0], "cv": m[1]}),
    st.tuples(st.floats(0.002, 0.05), st.floats(0.1, 1.5)).map(lambda m: {"kind": "lognormal", "mean": m[0], "cv": m[1]}),
    st.tuples(st.floats(0.002, 0.05), st.floats(0.0, 0.3), st.floats(1.0, 8.0)).map(
        lambda m: {"kind": "straggler", "base": {"kind": "constant", "value": m[0]}, "q": m[1], "factor": m[2]}),
    st.lists(st.floats(0.0, 0.05), min_size=1, max_size=7).map(lambda v: {"kind": "replay", "values": v}),
)


@st.composite
def specs(draw):
    mode = draw(st.sampled_from(["sync", "async", "paper"]))
    k = draw(st.integers(1, 5))
    doc = {"mode": mode, "workers": k, "steps": draw(st.integers(1, 250)), "seed": draw(st.integers(0, 2**31)),
           "compute": draw(st.lists(DELAYS, min_size=k, max_size=k))}
    if mode == "sync":
        if draw(st.booleans()):
            doc["buffer"] = draw(st.integers(1, 4))
    else:
        doc["buffer"] = draw(st.integers(1, 6))
        doc["policy"] = draw(st.sampled_from(["fifo", "newest", "uniform", "least_used", "authors"]))
        if draw(st.booleans()):
            doc["max_reuse"] = draw(st.integers(1, 4))
    if draw(st.booleans()):
        doc["slowdown"] = draw(st.lists(st.floats(0.5, 4.0), min_size=k, max_size=k))
    if k > 1 and mode != "paper":
        if draw(st.booleans()):
            doc["latency"] = draw(st.lists(DELAYS, min_size=k - 1, max_size=k - 1))
        if draw(st.booleans()):
            doc["payload_bytes"] = draw(st.lists(st.integers(0, 50_000), min_size=k - 1, max_size=k - 1))
            doc["bandwidth"] = draw(st.floats(1e5, 1e8))
    if k > 1 and mode == "paper" and draw(st.booleans()):
        doc["payload_bytes"] = draw(st.integers(0, 1000))
    if mode != "paper" and draw(st.booleans()):
        doc["arrival"] = draw(DELAYS)
    if mode != "paper" and draw(st.booleans()):
        doc["replicas"] = draw(st.lists(st.integers(1, 5), min_size=k, max_size=k))
        doc["gradient_bytes"] = draw(st.integers(0, 10**6))
        doc["allreduce"] = {"algorithm": draw(st.sampled_from(["ring", "tree"])), "bandwidth": 1e9, "latency": 1e-5}
    return spec_from_dict(doc)


def _same(a, b) -> None:
    assert a.trace == b.trace
    assert a.trace.rows == b.trace.rows  # the tuple form too: same Python values and types
    assert (a.makespan, a.updates, a.events) == (b.makespan, b.updates, b.events)


@settings(max_examples=150, deadline=None)
@given(specs())
def test_kernel_trace_equals_the_python_engine_on_random_specs(spec):
    _same(simulate(spec, engine="compiled"), simulate(spec, engine="python"))


@pytest.mark.parametrize("mode", ["sync", "async", "paper"])
def test_the_comparison_sees_a_different_schedule(mode):
    """Negative control: the same comparison fails on another seed's schedule."""
    doc = {"mode": mode, "workers": 3, "steps": 200, "buffer": 3, "policy": "uniform", "compute": {"kind": "gamma", "mean": 0.01, "cv": 0.5}}
    if mode == "paper":
        doc["slowdown"] = [1.0, 2.0, 1.0]
    ours = simulate(spec_from_dict(doc), engine="compiled")
    other = simulate(spec_from_dict(doc | {"seed": 1}), engine="python")
    with pytest.raises(AssertionError):
        _same(ours, other)


@pytest.mark.parametrize(("doc", "why"), [
    # a consumer 20x slower with unbounded queues: thousands of items wait, the item pool grows
    ({"mode": "sync", "workers": 2, "steps": 5000, "compute": [0.001, 0.02]}, "pool"),
    # a latency 1,000 updates long: every item sent is an event waiting in the heap, which grows
    ({"mode": "async", "workers": 2, "steps": 5000, "buffer": 2, "compute": 0.001, "latency": 1.0}, "heap"),
    # long enough for several chunks (65,536 rows each), the last one partial
    ({"mode": "async", "workers": 4, "steps": 30000, "buffer": 5, "compute": {"kind": "gamma", "mean": 0.01, "cv": 0.3}}, "chunks"),
    ({"mode": "paper", "workers": 4, "steps": 30000, "buffer": 5, "compute": 0.01, "slowdown": [1, 1.5, 1, 1]}, "chunks"),
])
def test_long_runs_grow_and_stream_and_stay_identical(doc, why):
    spec = spec_from_dict(doc)
    chunks = []
    streamed = simulate(spec, engine="compiled", keep_trace=False, on_chunk=lambda c: chunks.append(c.copy()))
    kept, python = simulate(spec, engine="compiled"), simulate(spec, engine="python")
    _same(kept, python)
    assert len(streamed.trace) == 0 and streamed.makespan == python.makespan
    assert np.array_equal(np.concatenate(chunks), np.concatenate(list(python.trace.chunks())))
    if why == "chunks":
        assert len(chunks) > 2


def test_without_numba_timing_runs_fall_back_with_one_warning(monkeypatch):
    spec = spec_from_dict({"mode": "async", "workers": 3, "steps": 100, "buffer": 2, "compute": {"kind": "gamma", "mean": 0.01, "cv": 0.5}})
    reference = simulate(spec, engine="python")
    monkeypatch.setattr(jit, "numba", None)
    monkeypatch.setattr(jit, "_IMPORT_ERROR", ImportError("No module named 'numba'"))
    monkeypatch.setattr(SIMULATE, "_warned", [])
    with pytest.warns(RuntimeWarning, match="numba cannot be imported .*the Python engine"):
        fallback = simulate(spec)
    _same(fallback, reference)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        simulate(spec)  # once per process
    with pytest.raises(InvalidArgument, match="engine 'compiled' of simulate needs numba"):
        simulate(spec, engine="compiled")


def test_engine_choices_are_checked():
    spec = spec_from_dict({"mode": "sync", "workers": 2, "steps": 10, "compute": 0.1})
    with pytest.raises(InvalidArgument, match="'engine' of simulate must be one of \\['auto', 'compiled', 'python'\\], got 'fast'"):
        simulate(spec, engine="fast")
    with pytest.raises(InvalidArgument, match="engine 'compiled' of simulate runs timing-only specs; callbacks \\['compute'\\]"):
        simulate(spec, engine="compiled", compute=lambda j, item: None)
