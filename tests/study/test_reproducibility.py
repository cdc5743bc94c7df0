"""A declared cluster gives the same simulated schedule wherever it runs.

Each configuration trains in fresh processes that differ in torch's thread count and in the
machine's load (a busy process beside it); the trace (every event's simulated time, worker,
item, version, staleness, bytes) must hash the same. Negative control: on a "profile" cluster
the times are measured in each process, and the hashes differ."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

CHILD = Path(__file__).with_name("reproduce_trace.py")
BASE = {"method": "simulated", "arch": "authors_cnn", "k": 3, "width": 4, "head": "linear", "epochs": 1, "batch_size": 32,
        "slowed": 1, "slowdown": 1.5, "buffer": 2, "compute_jitter": "lognormal", "evals": 1}
BUSY = "import time\nt = time.time()\nwhile time.time() - t < 60: sum(range(10000))"


def _trace_hash(settings: dict, threads: int, store: Path, *, busy: bool = False) -> str:
    load = subprocess.Popen([sys.executable, "-c", BUSY]) if busy else None
    try:
        out = subprocess.run([sys.executable, str(CHILD), json.dumps(settings), str(threads), str(store)], capture_output=True, text=True, check=True, timeout=300)
    finally:
        if load is not None:
            load.kill()
            load.wait()
    return out.stdout.strip()


@pytest.mark.slow
@pytest.mark.parametrize("cluster", [{"cluster": "balanced"}, {"cluster": "a100"}, {"cluster": "given", "compute_time": [0.01, 0.02, 0.01]}])
def test_the_same_config_gives_the_same_trace_under_other_threads_and_load(tmp_path, cluster):
    settings = BASE | cluster
    one = _trace_hash(settings, 1, tmp_path / "a.sqlite")
    two = _trace_hash(settings, 2, tmp_path / "b.sqlite", busy=True)
    assert len(one) == 64 and one == two


@pytest.mark.slow
def test_a_profiled_cluster_changes_with_the_process_that_measures_it(tmp_path):
    settings = BASE | {"cluster": "profile"}
    one = _trace_hash(settings, 1, tmp_path / "a.sqlite")
    two = _trace_hash(settings, 2, tmp_path / "b.sqlite", busy=True)
    assert one != two  # measured times differ between processes, so the schedule does
    assert hashlib.sha256(b"").hexdigest() not in (one, two)
