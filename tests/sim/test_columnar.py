"""The columnar trace holds the same rows as the tuple trace; the streaming summary gives the
whole-trace metrics whatever the chunking, exactly for integers and within its stated
accuracy for ages once it sketches; the writers stream every format and leave no partial file."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from dglsim.sim import Trace, simulate, spec_from_dict, summarize_trace
from dglsim.sim import summary as summary_module
from dglsim.sim.columnar import ColumnarTrace
from dglsim.sim.rows import chunk_to_array
from dglsim.sim.summary import ALPHA, TraceSummary
from dglsim.sim.trace_io import trace_writer

SPEC = {"mode": "async", "workers": 3, "steps": 3000, "buffer": 4, "policy": "uniform",
        "compute": {"kind": "lognormal", "mean": 0.01, "cv": 0.8}, "latency": 0.002, "payload_bytes": 1000, "bandwidth": 1e7}


@pytest.fixture(scope="module")
def python_run():
    return simulate(spec_from_dict(SPEC), engine="python")


@pytest.mark.parametrize("compress", [True, False])
def test_columnar_trace_holds_the_tuple_rows(python_run, compress):
    trace = ColumnarTrace(python_run.trace.chunks(size=5000), compress=compress)
    assert len(trace) == len(python_run.trace)
    assert trace.rows == python_run.trace.rows and trace == python_run.trace and python_run.trace == trace
    assert np.array_equal(trace.to_array(), python_run.trace.to_array())
    trace.validate(3)
    raw = len(trace) * trace.to_array().itemsize
    if compress:
        assert trace.nbytes < raw / 4  # what keeps a million updates under 150 MB (BENCHMARKS.md)


def _close(a, b, path=""):
    if isinstance(a, dict):
        assert set(a) == set(b), path
        for key in a:
            _close(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list):
        for i, (x, y) in enumerate(zip(a, b)):
            _close(x, y, f"{path}[{i}]")
    else:
        assert a == pytest.approx(b, rel=1e-12, abs=1e-12), path  # summation order only


@pytest.mark.parametrize("size", [1, 7, 1000, 10**6])
def test_streaming_summary_is_the_same_for_any_chunking(python_run, size):
    whole = summarize_trace(python_run.trace, 3)
    streamed = TraceSummary(3)
    for chunk in python_run.trace.chunks(size=size):
        streamed.add(chunk)
    _close(streamed.result(), whole)


def test_summary_quantiles_are_numpys(python_run):
    rows = python_run.trace.to_array()
    metrics = summarize_trace(python_run.trace, 3)
    for j in range(3):
        starts = rows[(rows["worker"] == j) & (rows["action"] == "start")]
        for field in ("staleness", "age", "reuse"):
            values = starts[field].astype(float)
            got = metrics["workers"][j][field]
            assert got["count"] == values.size and got["max"] == values.max()
            for q in (0.5, 0.9, 0.99):
                assert got[f"p{int(q * 100)}"] == np.quantile(values, q)  # exactly: histograms and kept ages
            assert got["mean"] == pytest.approx(values.mean(), rel=1e-12)


def test_past_the_exact_bound_ages_are_sketched_within_alpha(python_run, monkeypatch):
    monkeypatch.setattr(summary_module, "EXACT_AGES", 500)
    sketched = TraceSummary(3)
    for chunk in python_run.trace.chunks(size=1000):
        sketched.add(chunk)
    assert not sketched.exact_ages
    rows = python_run.trace.to_array()
    errors = []
    for j in (1, 2):  # module 0 reads fresh data: every age is 0
        ages = np.sort(rows[(rows["worker"] == j) & (rows["action"] == "start")]["age"])
        got = sketched.result()["workers"][j]["age"]
        assert got["count"] == ages.size and got["max"] == ages.max() and got["mean"] == pytest.approx(ages.mean(), rel=1e-12)
        for q in (0.5, 0.9, 0.99):
            # DDSketch's guarantee, for numpy's interpolated quantile: within ALPHA of the
            # interval between the two order statistics it interpolates
            position = (ages.size - 1) * q
            low, high = ages[int(np.floor(position))], ages[int(np.ceil(position))]
            value = got[f"p{int(q * 100)}"]
            assert low * (1 - ALPHA) <= value <= high * (1 + ALPHA)
            errors.append(abs(value / np.quantile(ages, q) - 1))
    assert max(errors) > 0  # it did sketch: the values are not the exact ones


def test_writers_stream_every_format(tmp_path, python_run):
    trace = python_run.trace
    for name in ("t.csv", "t.parquet", "t.json", "t.txt"):
        with trace_writer(tmp_path / name) as writer:
            for chunk in trace.chunks(size=4096):
                writer.write(chunk)
        assert not (tmp_path / (name + ".partial")).exists()
    assert Trace.from_csv(tmp_path / "t.csv") == trace
    assert Trace.from_text((tmp_path / "t.txt").read_text()) == trace
    table = pq.read_table(tmp_path / "t.parquet").to_pandas()
    expected = trace.to_array()
    assert list(table.columns) == list(expected.dtype.names)
    for name in expected.dtype.names:
        assert np.array_equal(table[name].astype(str if name == "action" else expected[name].dtype).to_numpy(), expected[name])
    events = json.loads((tmp_path / "t.json").read_text())["traceEvents"]
    assert sum(e["ph"] == "X" for e in events) == sum(r[2] == "finish" for r in trace.rows)  # an update per start..finish, across chunks
    assert sum(e["ph"] == "M" for e in events) == 3


def test_an_interrupted_writer_leaves_no_file(tmp_path, python_run):
    chunk = next(python_run.trace.chunks())
    with pytest.raises(KeyboardInterrupt):
        with trace_writer(tmp_path / "t.parquet") as writer:
            writer.write(chunk)
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_chunk_arrays_convert_both_ways(python_run):
    chunk = next(python_run.trace.chunks(size=100))
    assert np.array_equal(chunk_to_array(chunk), python_run.trace.to_array()[:100])
