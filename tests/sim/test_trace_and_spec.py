import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dglsim.errors import InvalidArgument
from dglsim.sim import ACTIONS, Row, Trace, TraceError, format_row, parse_row, simulate, spec_from_dict

SPEC = {"mode": "async", "workers": 3, "steps": 200, "buffer": 2, "compute": {"kind": "exponential", "mean": 0.01}, "latency": 0.001, "payload_bytes": 64}

rows = st.builds(
    Row, st.floats(0, 1e6, allow_nan=False), st.integers(0, 64), st.sampled_from(ACTIONS), st.integers(-1, 10**9),
    st.integers(0, 10**9), st.integers(0, 10**6), st.floats(0, 1e6, allow_nan=False), st.integers(0, 1000), st.integers(0, 1000), st.integers(0, 10**12),
)


@given(rows)
def test_row_string_form_round_trips_exactly(row):
    assert parse_row(format_row(row)) == row


def test_trace_text_round_trips_and_validates():
    trace = simulate(spec_from_dict(SPEC)).trace
    again = Trace.from_text(trace.text())
    assert again == trace
    again.validate(3)


def _first(rows, action):
    return next(i for i, r in enumerate(rows) if r[2] == action)


# (which row, which field, its new value given the rows, the problem the validator must name)
CORRUPTIONS = [
    (lambda rows: 10, 0, lambda rows: rows[9][0] - 1.0, "time goes back"),
    (lambda rows: _first(rows, "start"), 2, lambda rows: "finish", "finish without a start"),
    (lambda rows: _first(rows, "finish"), 4, lambda rows: 7, "finish sets version 7, expected 1"),
    (lambda rows: _first(rows, "start"), 5, lambda rows: -1, "negative staleness"),
]


@pytest.mark.parametrize(("where", "field", "value", "problem"), CORRUPTIONS, ids=["time", "no-start", "version", "negative"])
def test_validator_points_at_the_failing_row(where, field, value, problem):
    rows_ = list(simulate(spec_from_dict(SPEC)).trace.rows)
    index = where(rows_)
    row = rows_[index]
    rows_[index] = row[:field] + (value(rows_),) + row[field + 1 :]
    with pytest.raises(TraceError, match=problem) as info:
        Trace(rows_).validate(3)
    assert f"trace row {index}:" in str(info.value) and "\n> " in str(info.value)


def test_csv_and_chrome_exports(tmp_path):
    trace = simulate(spec_from_dict(SPEC)).trace
    trace.to_csv(tmp_path / "t.csv")
    lines = (tmp_path / "t.csv").read_text().splitlines()
    assert lines[0] == "time,worker,action,item,version,staleness,age,reuse,occupancy,bytes" and len(lines) == len(trace) + 1
    assert Trace.from_csv(tmp_path / "t.csv") == trace  # floats in repr: read back exactly
    (tmp_path / "bad.csv").write_text("time,worker\n")
    with pytest.raises(InvalidArgument, match="must start with the header time,worker,action"):
        Trace.from_csv(tmp_path / "bad.csv")
    trace.to_chrome(tmp_path / "t.json")
    events = json.loads((tmp_path / "t.json").read_text())["traceEvents"]
    spans = [e for e in events if e["ph"] == "X"]
    assert len(spans) == 3 * 200 and all(e["dur"] >= 0 for e in spans)
    assert {e["tid"] for e in spans} == {0, 1, 2}


@pytest.mark.parametrize(("change", "match"), [
    ({"mode": "pipelined"}, "'mode' of PipelineSpec must be one of"),
    ({"workers": 0}, "'workers' of PipelineSpec must be an int >= 1, got 0"),
    ({"steps": -5}, "'steps' of PipelineSpec must be an int >= 1, got -5"),
    ({"buffer": 0}, "'buffer' of PipelineSpec must be absent or an int >= 1, got 0"),
    ({"buffer": None}, "'buffer' of PipelineSpec must be an int >= 1 \\(the buffer size M\\) in async mode"),
    ({"policy": "lifo"}, "'policy' of PipelineSpec must be one of"),
    ({"max_reuse": 0}, "'max_reuse' of PipelineSpec must be absent or an int >= 1, got 0"),
    ({"bandwidth": 0}, "'bandwidth' of PipelineSpec must be a real > 0"),
    ({"slowdown": [1.0, 2.0]}, "'slowdown' of PipelineSpec must be 3 values"),
    ({"slowdown": [1.0, -2.0, 1.0]}, "'slowdown' of PipelineSpec must be 3 values, each a finite real > 0"),
    ({"payload_bytes": [1, 2, 3]}, "'payload_bytes' of PipelineSpec must be 2 values"),
    ({"compute": {"kind": "gamma", "mean": 1.0}}, "missing \\['cv'\\]"),
    ({"seeed": 1}, "unknown key 'seeed'"),
])
def test_bad_spec_values_are_rejected_naming_the_key(change, match):
    doc = {k: v for k, v in (SPEC | change).items() if v is not None}
    with pytest.raises(InvalidArgument, match=match):
        spec_from_dict(doc)
