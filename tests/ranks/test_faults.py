"""Faults in a real run: a rank killed or terminated, under python -m dglsim.ranks and under
torchrun, the launcher killed or interrupted. Each fault must leave no process of the run alive
within seconds, keep the partial traces of the ranks that could write them, and name the rank
that died first.

Rank 1 hangs at update 2 (DGLSIM_RANK_FAULT) and says so; the fault is injected once it has,
so every case starts from the same state: rank 0 has trained and is held back by rank 1.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from dglsim.ranks.launch import first_failure
from dglsim.ranks.worker import FAULT_ENV

from ..processes import TAG_VAR, tagged

pytestmark = [pytest.mark.data, pytest.mark.slow]

CONFIG = """dataset = "cifar10"
arch = "authors_cnn"
k = 2
width = 4
head = "linear"
train_per_class = 10
test_per_class = 5
epochs = 4
batch_size = 20
pipeline = "sync"
[dist]
timeout_s = 60
"""
# 60 s: far longer than any check below waits, so a rank that stops did so on the closed
# connection or the signal, never on gloo's timeout
NOTICE_S = 10.0  # the most a fault may take to reach every process (start-up excluded)


def _rank_pid(tag: str, rank: int) -> int:
    return next(pid for pid, env in tagged(tag).items() if env.get("RANK") == str(rank) and env.get("LOCAL_RANK") is not None)


class Run:
    """A launch in the background whose stderr is collected, with rank 1 hanging at update 2."""

    def __init__(self, tmp_path: Path, command: list[str]) -> None:
        self.tag = uuid.uuid4().hex
        (tmp_path / "run.toml").write_text(CONFIG)
        self.out = tmp_path / "out"
        env = dict(os.environ, PYTHONWARNINGS="ignore", **{TAG_VAR: self.tag})
        env[FAULT_ENV] = "1:2:hang"
        self.proc = subprocess.Popen([*command, str(tmp_path / "run.toml"), "--out", str(self.out), "--no-progress"],
                                     stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
        self.lines: list[str] = []
        self.hanging = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        if not self.hanging.wait(240):
            self.proc.kill()
            pytest.fail("rank 1 never reached its fault:\n" + "".join(self.lines))

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line)
            if "hanging at update 2" in line:
                self.hanging.set()

    def finish(self) -> tuple[int, str]:
        code = self.proc.wait(timeout=NOTICE_S + 10)
        time.sleep(0.2)  # the reader thread drains the pipe
        return code, "".join(self.lines)

    def nothing_alive_within(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while tagged(self.tag):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True


def _launcher() -> list[str]:
    return [sys.executable, "-m", "dglsim.ranks"]


def _torchrun() -> list[str]:
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).with_name("torchrun"))
    return [torchrun, "--nproc-per-node", "2", "-m", "dglsim.ranks"]


def _partial_trace(out: Path, rank: int) -> int:
    """Events in a rank's partial trace (header excluded)."""
    return len((out / f"rank{rank}.trace.csv").read_text().splitlines()) - 1


def test_a_killed_rank_is_noticed_at_once_named_first_and_the_others_keep_their_traces(tmp_path, cifar10):
    run = Run(tmp_path, _launcher())
    started = time.monotonic()
    os.kill(_rank_pid(run.tag, 1), signal.SIGKILL)
    code, err = run.finish()
    assert time.monotonic() - started < NOTICE_S  # not the 60 s timeout
    assert code == 1, err
    assert "error: rank 1 failed first: killed by SIGKILL; then ranks 0 stopped" in err, err
    assert _partial_trace(run.out, 0) > 0 and not (run.out / "rank1.trace.csv").exists()  # a killed rank writes nothing
    assert json.loads((run.out / "rank0.error.json").read_text())["blames"] == 1
    assert run.nothing_alive_within(5)


def test_a_terminated_rank_keeps_its_partial_trace_and_is_named_first(tmp_path, cifar10):
    run = Run(tmp_path, _launcher())
    os.kill(_rank_pid(run.tag, 1), signal.SIGTERM)
    code, err = run.finish()
    assert code == 1, err
    assert "error: rank 1: stopped by SIGTERM; kept its partial trace" in err, err
    assert "error: rank 1 failed first: stopped by SIGTERM" in err, err
    assert _partial_trace(run.out, 1) > 0 and _partial_trace(run.out, 0) > 0
    assert run.nothing_alive_within(5)


def test_a_killed_launcher_leaves_no_rank_and_the_ranks_keep_their_traces(tmp_path, cifar10):
    run = Run(tmp_path, _launcher())
    run.proc.kill()
    run.finish()
    assert run.nothing_alive_within(NOTICE_S)
    causes = set()
    for rank in (0, 1):  # the kernel's SIGTERM on the launcher's death: each rank kept its trace
        assert _partial_trace(run.out, rank) > 0
        causes.add(json.loads((run.out / f"rank{rank}.error.json").read_text())["cause"])
    # both are signalled at once; one may first see the other's connection close
    assert "stopped by SIGTERM" in causes and causes <= {"stopped by SIGTERM", "rank 0 died before finishing (its connection closed)",
                                                         "rank 1 died before finishing (its connection closed)"}


def test_ctrl_c_on_the_launcher_is_one_line_exit_130_and_keeps_the_traces(tmp_path, cifar10):
    run = Run(tmp_path, _launcher())
    run.proc.send_signal(signal.SIGINT)
    code, err = run.finish()
    assert code == 130 and "Traceback" not in err
    assert "error: interrupted; ranks 0, 1 were stopped; partial traces in" in err, err
    assert _partial_trace(run.out, 0) > 0 and _partial_trace(run.out, 1) > 0
    assert run.nothing_alive_within(5)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_under_torchrun_a_dead_rank_is_the_root_cause_and_the_other_keeps_its_trace(sig, tmp_path, cifar10):
    run = Run(tmp_path, _torchrun())
    os.kill(_rank_pid(run.tag, 1), sig)
    code, err = run.finish()
    assert code != 0, err
    root = err.split("Root Cause (first observed failure):", 1)[1]
    assert "rank      : 1 (local_rank: 1)" in root.split("=====", 1)[0]
    assert _partial_trace(run.out, 0) > 0
    if sig == signal.SIGTERM:
        assert _partial_trace(run.out, 1) > 0
    assert run.nothing_alive_within(5)


def test_first_failure_walks_back_a_cascade_to_its_root():
    own, blames = {"cause": "injected crash", "blames": None}, lambda r: {"cause": f"rank {r} died", "blames": r}
    assert first_failure([2, 1, 0], {2: blames(1), 1: own, 0: blames(1)}) == 1  # seen late, but it blames no one
    assert first_failure([0, 2, 1], {0: blames(1), 2: blames(1), 1: blames(0)}) == 1  # a hung rank: blamed first
    assert first_failure([1], {1: {"cause": "killed by SIGKILL", "blames": None}}) == 1
    assert first_failure([], {}) is None
