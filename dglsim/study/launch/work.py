"""What a worker does with one run, whatever launched it: set its threads, train with an epoch
checkpoint, and hand back the outcome (dglsim.study.launch.inbox). A run that raises is a
failed outcome with its traceback, not a dead study."""

from __future__ import annotations

import socket
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from dglsim.errors import DataError, InvalidArgument
from dglsim.recipe.config import RunConfig
from dglsim.study import execute
from dglsim.study.launch import inbox
from dglsim.train.checkpoint import EpochCheckpoint

__all__ = ["RunJob", "run_job", "failed_outcome", "checkpoint_path"]


@dataclass(frozen=True)
class RunJob:
    """Everything a worker needs for one run; picklable, so any launcher can ship it."""

    cfg: RunConfig
    study: str
    profile: str
    out: str  # the study's output folder, seen by driver and worker alike (a shared file system on a cluster)
    threads: int  # torch threads of the run (the number of floating-point sums in flight changes results)
    launcher: str

    @property
    def key(self) -> str:
        return self.cfg.key()


def checkpoint_path(out: str | Path, key: str) -> Path:
    return Path(out) / ".checkpoints" / f"{key}.pt"


def run_job(job: RunJob, on_steps: Callable[[int, int], None] | None = None) -> dict:
    """Run `job`, write its outcome to the inbox, return it. The outcome: key, study, profile,
    config, status ("done" or "failed"), result (execute_run's dict) or error (the traceback),
    host and launcher. Bad input (InvalidArgument, DataError: a data folder that is a file, say)
    is status "refused" with the one-line message, returned and never stored: it is no failure
    of the run, and the driver ends the study with it."""
    torch.set_num_threads(job.threads)
    attempt = inbox.mark_running(job.out, job.key, job.launcher)
    checkpoint = EpochCheckpoint(checkpoint_path(job.out, job.key))
    outcome = {"key": job.key, "study": job.study, "profile": job.profile, "config": job.cfg.as_dict(), "host": socket.gethostname(), "launcher": job.launcher}
    try:
        result = execute.execute_run(job.cfg, on_steps=on_steps, checkpoint=checkpoint)
        result["provenance"] |= {"launcher": job.launcher, "attempt": attempt, "resumed_at_epoch": checkpoint.resumed_at}
        outcome |= {"status": "done", "result": result}
    except (InvalidArgument, DataError) as exc:  # the input is wrong, not the run: the driver stops the study with this message
        inbox.clear_running(job.out, job.key)
        return outcome | {"status": "refused", "error": str(exc), "error_type": type(exc).__name__}
    except Exception:
        outcome |= {"status": "failed", "error": traceback.format_exc()}
    inbox.write_outcome(job.out, outcome)
    checkpoint.remove()  # the outcome is safe in the inbox: nothing to resume any more
    inbox.clear_running(job.out, job.key)
    return outcome


def failed_outcome(job: RunJob, error: str) -> dict:
    """The outcome the driver records for a run whose worker never returned one (it died, or
    the launcher lost it)."""
    return {"key": job.key, "study": job.study, "profile": job.profile, "config": job.cfg.as_dict(), "host": None, "launcher": job.launcher,
            "status": "failed", "error": error}
