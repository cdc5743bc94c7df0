"""Spawn the K ranks of a run on this machine, watch them, and stop them all when one fails.

Each rank is `python -m dglsim.dist CONFIG ...` with the environment torchrun would give it
(RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), so the two launches run the same code.
A rank that exits with an error gives the others `grace_s` to stop on their own (they time out
on the missing peer and name it), then every rank still running is terminated, then killed: no
process outlives the launcher.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

__all__ = ["LaunchResult", "launch", "free_port"]


@dataclass(frozen=True)
class LaunchResult:
    returncodes: list[int]
    failed: list[int]  # ranks that exited with an error, first failure first
    terminated: list[int]  # ranks stopped by the launcher
    wall_s: float

    @property
    def ok(self) -> bool:
        return not self.failed and not self.terminated


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(world: int, args: list[str], *, threads: int = 1, grace_s: float = 30.0, env: dict[str, str] | None = None) -> LaunchResult:
    """Run `python -m dglsim.dist *args` as ranks 0..world-1 and wait for all of them."""
    port = free_port()
    start = time.perf_counter()
    procs = []
    for rank in range(world):
        rank_env = dict(os.environ if env is None else env, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                        LOCAL_WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), OMP_NUM_THREADS=str(threads))
        procs.append(subprocess.Popen([sys.executable, "-m", "dglsim.dist", *args], env=rank_env, start_new_session=True))
    failed: list[int] = []
    terminated: list[int] = []
    deadline = None
    try:
        while any(p.poll() is None for p in procs):
            for rank, p in enumerate(procs):
                if p.returncode not in (None, 0) and rank not in failed:
                    failed.append(rank)
                    deadline = deadline or time.monotonic() + grace_s
            if deadline is not None and time.monotonic() > deadline:
                break
            time.sleep(0.05)
    finally:  # an error, Ctrl-C or the grace period: nothing is left running
        for rank, p in enumerate(procs):
            if p.poll() is None:
                terminated.append(rank)
                _stop(p)
    for rank, p in enumerate(procs):
        if p.returncode not in (0, None) and rank not in failed and rank not in terminated:
            failed.append(rank)
    return LaunchResult([p.returncode for p in procs], failed, terminated, time.perf_counter() - start)


def _stop(p: subprocess.Popen) -> None:
    try:
        os.killpg(p.pid, signal.SIGTERM)
        p.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
    except ProcessLookupError:
        p.wait()
