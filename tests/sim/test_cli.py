"""python -m dglsim.sim runs every documented example; bad specs are clear errors."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dglsim.sim import Trace

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "studies" / "sim").glob("*.toml"))


def _run(*args):
    return subprocess.run([sys.executable, "-m", "dglsim.sim", *map(str, args)], capture_output=True, text=True, timeout=120)


def test_there_are_examples():
    assert {p.stem for p in EXAMPLES} >= {"sync_tandem", "async_straggler", "paper_noise"}


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs_and_reports_metrics_and_a_valid_trace(example, tmp_path):
    result = _run(example, "--json", "--trace-out", tmp_path / "trace.txt")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    workers = metrics["workers"]
    assert metrics["makespan"] > 0 and len(workers) >= 2
    assert all(w["updates"] > 0 and 0 <= w["utilization"] <= 1 for w in workers)
    trace = Trace.from_text((tmp_path / "trace.txt").read_text())
    assert len(trace) == metrics["events"]
    trace.validate(len(workers))


def test_table_output_and_exports(tmp_path):
    example = next(p for p in EXAMPLES if p.stem == "sync_tandem")
    table = _run(example)
    assert table.returncode == 0 and "makespan" in table.stdout and "util" in table.stdout
    assert _run(example, "--trace-out", tmp_path / "t.csv").returncode == 0
    assert (tmp_path / "t.csv").read_text().startswith("time,worker,action")
    assert _run(example, "--trace-out", tmp_path / "t.json").returncode == 0
    assert json.loads((tmp_path / "t.json").read_text())["traceEvents"]


def test_both_engines_print_the_same_metrics_and_write_the_same_parquet(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    example = next(p for p in EXAMPLES if p.stem == "async_straggler")
    outputs = {}
    for engine in ("compiled", "python"):
        result = _run(example, "--json", "--engine", engine, "--trace-out", tmp_path / f"{engine}.parquet")
        assert result.returncode == 0, result.stderr
        outputs[engine] = {k: v for k, v in json.loads(result.stdout).items() if k not in ("wall_s", "engine")}
    assert outputs["compiled"] == outputs["python"]
    assert pq.read_table(tmp_path / "compiled.parquet").equals(pq.read_table(tmp_path / "python.parquet"))
    assert not list(tmp_path.glob("*.partial"))


def test_bad_spec_is_a_clear_error(tmp_path):
    spec = tmp_path / "bad.toml"
    spec.write_text('mode = "async"\nworkers = 3\nsteps = 10\nbuffer = 0\ncompute = 0.1\n')
    result = _run(spec)
    assert result.returncode == 2 and "'buffer' of PipelineSpec must be absent or an int >= 1, got 0" in result.stderr
    result = _run(tmp_path / "missing.toml")
    assert result.returncode == 2 and "must be readable TOML" in result.stderr


@pytest.mark.parametrize(("text", "message"), [
    ('mode = "sync"\nworkers = 3\nsteps = 100000000\ncompute = 0.1\n', "'steps' of PipelineSpec must be <= 10,000,000 updates per worker"),
    ('mode = "sync"\nworkers = 1000000\nsteps = 10\ncompute = 0.1\n', "'workers' of PipelineSpec must be <= 4,096 workers"),
    # within both counts, but 4,000 workers x 10 M steps of trace rows are terabytes
    ('mode = "sync"\nworkers = 4000\nsteps = 10000000\ncompute = 0.1\n', "'steps' x 'workers' of PipelineSpec must fit in half the available memory"),
    ('mode = "sync"\nworkers = 2\nsteps = 10\ncompute = {dist = "lognorm", s = "wide"}\n', "compute[0].s must be a number, got 'wide'"),
    ('mode = "sync"\nworkers = 2\nsteps = 10\ncompute = {kind = "replay", values = [0.1, "x"]}\n', "compute[0].values[1] must be a number, got 'x'"),
    ('mode = "sync"\nworkers = 2\nsteps = 10\ncompute = {kind = "constant", value = true}\n', "'value' of Constant must be a finite real >= 0, got True"),
    ('mode = "paper"\nworkers = 2\nsteps = 10\ncompute = 0.1\n', "'buffer' of PipelineSpec must be an int >= 1 (the buffer size M) in paper mode, got None"),
])
def test_bad_values_and_unbounded_work_are_one_line_errors(tmp_path, text, message):
    spec = tmp_path / "bad.toml"
    spec.write_text(text)
    result = _run(spec)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_a_spec_that_is_not_utf8_is_a_one_line_error(tmp_path):
    spec = tmp_path / "latin1.toml"
    spec.write_bytes('mode = "sync" # caf\xe9\n'.encode("latin-1"))
    result = _run(spec)
    assert result.returncode == 2 and "must be readable TOML (UTF-8)" in result.stderr and "Traceback" not in result.stderr


def test_allow_large_lifts_the_limit_on_steps(monkeypatch):
    from dglsim.errors import InvalidArgument
    from dglsim.limits import ENV_VAR
    from dglsim.sim import spec_from_dict

    doc = {"mode": "sync", "workers": 1, "steps": 10_000_001, "compute": 0.1}
    with pytest.raises(InvalidArgument, match="pass --allow-large"):
        spec_from_dict(doc)
    monkeypatch.setenv(ENV_VAR, "1")  # what --allow-large sets
    assert spec_from_dict(doc).steps == 10_000_001


def test_payload_from_an_activation_shape(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text('mode = "sync"\nworkers = 2\nsteps = 3\ncompute = 0.1\npayload_bytes = {shape = [128, 64, 16, 16], dtype = "float16"}\n')
    metrics = json.loads(_run(spec, "--json").stdout)
    assert metrics["workers"][0]["bytes_sent"] == 3 * 128 * 64 * 16 * 16 * 2


def test_a_timing_only_simulation_never_imports_torch():
    code = ("import sys; from dglsim.sim import simulate, spec_from_dict, summarize_trace, sync_fast; "
            "r = simulate(spec_from_dict({'mode': 'async', 'workers': 3, 'steps': 50, 'buffer': 2, 'compute': {'kind': 'gamma', 'mean': 0.1, 'cv': 0.3}})); "
            "summarize_trace(r.trace, 3); print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "False", result.stderr


def test_the_former_key_capacity_is_read_with_a_warning(tmp_path):
    """`capacity` became `buffer` (RunConfig's name): the old spec runs the same, with a one-line warning."""
    old, new = tmp_path / "old.toml", tmp_path / "new.toml"
    old.write_text('mode = "async"\nworkers = 2\nsteps = 20\ncapacity = 3\ncompute = {kind = "gamma", mean = 0.1, cv = 0.5}\n')
    new.write_text(old.read_text().replace("capacity", "buffer"))
    ran_old, ran_new = _run(old, "--json"), _run(new, "--json")
    same = lambda out: {k: v for k, v in json.loads(out).items() if k not in ("spec", "wall_s")}  # noqa: E731 (the spec's path and the wall time differ)
    assert ran_old.returncode == 0 and same(ran_old.stdout) == same(ran_new.stdout)
    assert "'capacity' in" in ran_old.stderr and "is now 'buffer'" in ran_old.stderr and "Traceback" not in ran_old.stderr
