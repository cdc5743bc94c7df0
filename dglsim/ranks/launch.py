"""Spawn the K ranks of a run on this machine, watch them, and stop them all when one fails.

Each rank is `python -m dglsim.ranks CONFIG ...` with the environment torchrun would give it
(RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), so the two launches run the same code.
A rank that dies is noticed by the others at once (dglsim.ranks.lifeline), so they stop on their
own; one that hangs is named by its neighbours at the timeout. `grace_s` after the first failure
every rank still running is terminated (SIGTERM: it keeps its partial trace), then killed. No
rank outlives the launcher, even a killed one: each asks the kernel to SIGTERM it then.

The summary names the rank that failed first and why: the first failure that does not blame a
peer (its own error, a signal, a kill), else the rank the first failure blames (a hung rank is
blamed by the neighbours that waited for it).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from dglsim.ranks.lifeline import PARENT_ENV, error_path

__all__ = ["LaunchResult", "launch", "free_port", "first_failure"]


@dataclass(frozen=True)
class LaunchResult:
    returncodes: list[int]
    failed: list[int]  # ranks that exited with an error, in the order they failed (see `launch`)
    terminated: list[int]  # ranks stopped by the launcher
    wall_s: float
    causes: dict[int, dict] = field(default_factory=dict)  # rank -> {"cause", "blames"}, from each rank's error file or exit code
    interrupted: bool = False  # the launcher was interrupted (Ctrl-C)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.terminated and not self.interrupted

    @property
    def root(self) -> int | None:
        return first_failure(self.failed, self.causes)

    def summary(self) -> str:
        """One line: the rank that failed first and its cause, then what happened to the others."""
        if self.interrupted and not self.failed:
            return f"interrupted; ranks {', '.join(map(str, self.terminated))} were stopped"
        root = self.root
        cause = self.causes.get(root, {}).get("cause", "no cause recorded")
        if self.causes.get(root, {}).get("blames") is not None:  # it hung: say what its first accuser saw
            cause = next(self.causes[r]["cause"] for r in self.failed if self.causes[r].get("blames") == root)
        others = [r for r in self.failed if r != root]
        line = f"rank {root} failed first: {cause}"
        if others:
            line += f"; then ranks {', '.join(map(str, others))} stopped"
        if self.terminated:
            line += f"; ranks {', '.join(map(str, self.terminated))} were stopped by the launcher"
        return line + f" (exit codes {self.returncodes})"


def first_failure(failed: list[int], causes: dict[int, dict]) -> int | None:
    """The root of a cascade of failures, `failed` in the order seen (see the module's docstring)."""
    for rank in failed:
        if causes.get(rank, {}).get("blames") is None:
            return rank
    return causes[failed[0]]["blames"] if failed else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(world: int, args: list[str], *, out: Path, threads: int = 1, grace_s: float = 5.0, env: dict[str, str] | None = None) -> LaunchResult:
    """Run `python -m dglsim.ranks *args` as ranks 0..world-1 (writing into `out`) and wait for all of them."""
    port = free_port()
    start = time.perf_counter()
    procs = []
    for rank in range(world):
        rank_env = dict(os.environ if env is None else env, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                        LOCAL_WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), OMP_NUM_THREADS=str(threads))
        rank_env[PARENT_ENV] = str(os.getpid())
        # a session of its own: the terminal's Ctrl-C reaches the launcher, which stops the ranks in order
        procs.append(subprocess.Popen([sys.executable, "-m", "dglsim.ranks", *args], env=rank_env, start_new_session=True))
    seen: dict[int, float] = {}  # failed rank -> when the launcher saw it exit
    terminated: list[int] = []  # ranks still running when the launcher stopped the run
    deadline = None
    interrupted = False
    try:
        while any(p.poll() is None for p in procs):
            for rank, p in enumerate(procs):
                if p.returncode not in (None, 0) and rank not in seen:
                    seen[rank] = time.time()
                    deadline = deadline or time.monotonic() + grace_s
            if deadline is not None and time.monotonic() > deadline:
                break
            time.sleep(0.02)
    except KeyboardInterrupt:
        interrupted = True
    finally:  # an error, Ctrl-C or the grace period: nothing is left running
        terminated = [rank for rank, p in enumerate(procs) if p.poll() is None]
        _stop([procs[rank] for rank in terminated])
    for rank, p in enumerate(procs):
        if p.returncode not in (0, None) and rank not in seen and rank not in terminated:
            seen[rank] = time.time()
    causes = {rank: _cause(out, rank, procs[rank].returncode) for rank in [*seen, *terminated]}
    # ranks that die together exit within one poll: order them by when each says it failed
    # (a killed rank says nothing: by when it was seen, which is never earlier than its death)
    failed = sorted(seen, key=lambda r: causes[r].get("time", seen[r]))
    return LaunchResult([p.returncode for p in procs], failed, terminated, time.perf_counter() - start, causes, interrupted)


def _cause(out: Path, rank: int, returncode: int) -> dict:
    """What a rank wrote about its stop, else what its exit code says (a killed rank writes nothing)."""
    try:
        record = json.loads(error_path(out, rank).read_text())
        return {"cause": record["cause"], "blames": record.get("blames"), "time": float(record["time"])}
    except (OSError, ValueError, KeyError):
        pass
    if returncode is not None and returncode < 0:
        return {"cause": f"killed by {signal.Signals(-returncode).name}", "blames": None}
    return {"cause": f"exited with code {returncode}", "blames": None}


def _stop(procs: list[subprocess.Popen], wait_s: float = 5.0) -> None:
    """SIGTERM every one at once (each keeps its partial trace), SIGKILL those still there after
    `wait_s`. All at once: a rank stopped alone would make the others fail on its closed connection."""
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + wait_s
    for p in procs:
        try:
            p.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
