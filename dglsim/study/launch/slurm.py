"""The Slurm launcher: each run is a submitit job; the pending runs go out as one job array.

A job that Slurm signals before a timeout or a preemption is checkpointed and requeued in
submitit's sense (`CheckpointedRun.checkpoint`): the requeued job calls the same run, which
resumes from its last finished epoch (dglsim.train.checkpoint; runs in simulated time restart).
A timeout counts against `max_requeues`, a preemption does not (submitit's rule).

The study's output folder must be on a file system that the compute nodes share: jobs leave
their outcomes there (dglsim.study.launch.inbox) and submitit keeps its job files under
`OUT/.slurm`. Slurm jobs outlive a killed driver, so the launcher keeps a ledger of the job
submitted for each run (`OUT/.slurm/submitted.json`): a restarted driver adopts the jobs still
pending or running instead of submitting their runs again, and resubmits only runs whose job
ended without an outcome. With `[launcher] cluster = "local"`, submitit runs the jobs as processes of this
machine, `--jobs` at a time, with the same signals and requeueing: that is how the tests run.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

from dglsim.study.launch.inbox import atomic_write
from dglsim.study.launch.options import LauncherOptions
from dglsim.study.launch.work import RunJob, failed_outcome, run_job

__all__ = ["SlurmLauncher", "CheckpointedRun"]


class CheckpointedRun:
    """One run as a submitit callable. submitit requeues a job whose callable has `checkpoint`;
    the state to resume from is the run's epoch checkpoint on disk, so requeueing resubmits the
    same callable unchanged."""

    def __init__(self, job: RunJob) -> None:
        self.job = job

    def __call__(self) -> dict:
        return run_job(self.job)

    def checkpoint(self):
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(self)


class SlurmLauncher:
    name = "slurm"

    def __init__(self, options: LauncherOptions, *, jobs: int, threads: int) -> None:
        self.options, self.jobs, self.threads = options, jobs, threads
        self._queue: list[RunJob] = []
        self._jobs: dict = {}  # submitit job -> RunJob
        self._executor = None

    def __enter__(self) -> "SlurmLauncher":
        return self

    def __exit__(self, *exc) -> None:
        # Jobs left running (the driver was interrupted) go on; their outcomes wait in the inbox
        # for the next driver.
        pass

    def _make_executor(self, out: str, gpus: int):
        import submitit

        o = self.options
        executor = submitit.AutoExecutor(folder=Path(out) / ".slurm" / "%j", cluster=o.cluster)  # never auto: no silent fallback to local
        params = {"timeout_min": o.time_min, "cpus_per_task": self.threads, "gpus_per_node": gpus, "tasks_per_node": 1, "nodes": 1,
                  "name": "dglsim", "slurm_array_parallelism": o.array_parallelism}
        if o.partition is not None:
            params["slurm_partition"] = o.partition
        if o.mem_gb is not None:
            params["mem_gb"] = o.mem_gb
        executor.update_parameters(**params)
        executor._executor.max_num_timeout = o.max_requeues  # the inner executor's countdown of timeouts
        return executor

    @property
    def outstanding(self) -> int:
        return len(self._queue) + len(self._jobs)

    @staticmethod
    def _ledger_path(out: str) -> Path:
        return Path(out) / ".slurm" / "submitted.json"

    def _ledger(self, out: str) -> dict[str, list[str]]:
        """run key -> the ids of the jobs submitted for it, oldest first."""
        path = self._ledger_path(out)
        return json.loads(path.read_text()) if path.exists() else {}

    def _adopt(self, out: str, job_id: str):
        """The still-pending or running job `job_id` of an earlier driver, or None when it has ended."""
        import submitit
        from submitit.local.local import LocalJob

        folder = Path(out) / ".slurm" / "%j"
        if self.options.cluster == "slurm":
            handle = submitit.SlurmJob(folder=folder, job_id=job_id)
            return None if handle.done(force_check=True) else handle
        handle = LocalJob(folder=folder, job_id=job_id)  # submitit's local job id is its controller's PID
        return _AdoptedLocalJob(handle) if _local_job_alive(handle) else None

    def submit(self, jobs: list[RunJob]) -> None:
        ledger = self._ledger(jobs[0].out) if jobs else {}
        adopted = 0
        for job in jobs:
            ids = ledger.get(job.key)
            handle = self._adopt(job.out, ids[-1]) if ids else None
            if handle is None:
                self._queue.append(job)
            else:
                self._jobs[handle] = job
                adopted += 1
        if adopted:
            print(f"slurm: {adopted} job(s) of an earlier driver are still pending or running; waiting for them instead of submitting their runs again", file=sys.stderr)
        self._top_up()

    def _top_up(self) -> None:
        # A real cluster takes the whole array (Slurm throttles it by array_parallelism); the local
        # cluster runs `jobs` at a time, as the local launcher would.
        room = len(self._queue) if self.options.cluster == "slurm" else self.jobs - len(self._jobs)
        batch, self._queue = self._queue[:room], self._queue[room:]
        if not batch:
            return
        if self._executor is None:
            self._executor = self._make_executor(batch[0].out, self.options.gpus_for([j.cfg.device for j in batch]))
        with self._executor.batch():
            submitted = [(self._executor.submit(CheckpointedRun(job)), job) for job in batch]
        ledger = self._ledger(batch[0].out)
        for handle, job in submitted:
            self._jobs[handle] = job
            ledger.setdefault(job.key, []).append(str(handle.job_id))
        atomic_write(self._ledger_path(batch[0].out), json.dumps(ledger))

    def wait(self, timeout: float) -> list[dict]:
        import time

        deadline = time.monotonic() + timeout
        while True:
            done = [handle for handle in self._jobs if handle.done()]
            if done or time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        outcomes = []
        for handle in done:
            job = self._jobs.pop(handle)
            try:
                outcomes.append(handle.result())
            except Exception:  # the job failed outside the run (out of time too often, killed, lost): submitit's error says how
                outcomes.append(failed_outcome(job, f"slurm job {handle.job_id}: " + traceback.format_exc(limit=0)))
        self._top_up()
        return outcomes


def _local_job_alive(handle) -> bool:
    """Whether submitit's local controller of `handle` (PID = job id) still runs and has left no result."""
    if handle.paths.result_pickle.exists():
        return False
    try:
        cmdline = Path(f"/proc/{int(handle.job_id)}/cmdline").read_bytes()
    except (OSError, ValueError):
        return False
    return b"submitit" in cmdline  # not another process that took over the PID


class _AdoptedLocalJob:
    """A local job of an earlier driver: without its process handle, submitit cannot tell when it
    ends, so its end is its controller's exit."""

    def __init__(self, handle) -> None:
        self.handle = handle
        self.job_id = handle.job_id

    def done(self) -> bool:
        return not _local_job_alive(self.handle)

    def result(self):
        return self.handle.result()
