"""The local launcher: runs in the driver's process with one job, else in a pool of `jobs`
spawned processes that die with the driver (dglsim.lifetime)."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, ContextManager

import torch

from dglsim.lifetime import die_with_parent
from dglsim.study.launch.work import RunJob, failed_outcome, run_job

__all__ = ["LocalLauncher"]

StepProgress = Callable[[RunJob], ContextManager[Callable[[int, int], None]]]


def _worker_init(threads: int, driver_pid: int) -> None:
    die_with_parent(driver_pid)  # a killed driver leaves no worker behind
    torch.set_num_threads(threads)


class LocalLauncher:
    name = "local"

    def __init__(self, *, jobs: int, threads: int, max_retries: int) -> None:
        self.jobs, self.threads, self.max_retries = jobs, threads, max_retries
        self.step_progress: StepProgress | None = None  # the driver's per-update bar, shown for in-process runs
        self._queue: list[RunJob] = []
        self._futures: dict[Future, RunJob] = {}
        self._retries: dict[str, int] = {}
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> "LocalLauncher":
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    @property
    def outstanding(self) -> int:
        return len(self._queue) + len(self._futures)

    def submit(self, jobs: list[RunJob]) -> None:
        if self.jobs == 1:
            self._queue += jobs
            return
        for job in jobs:
            self._futures[self._ensure_pool().submit(run_job, job)] = job

    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            ctx = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(self.jobs, mp_context=ctx, initializer=_worker_init, initargs=(self.threads, os.getpid()))
        return self._pool

    def wait(self, timeout: float) -> list[dict]:
        if self.jobs == 1:  # the next run, here, with its per-update bar
            job = self._queue.pop(0)
            with (self.step_progress(job) if self.step_progress else contextlib.nullcontext(None)) as on_steps:
                return [run_job(job, on_steps)]
        finished, _ = wait(list(self._futures), timeout=timeout, return_when=FIRST_COMPLETED)
        outcomes, broken = [], []
        for fut in finished:
            job = self._futures.pop(fut)
            try:
                outcomes.append(fut.result())
            except BrokenProcessPool:
                broken.append(job)
        if broken:  # a worker died (killed, out of memory): the pool is gone with every run it held
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
            broken += list(self._futures.values())
            self._futures.clear()
            for job in broken:
                tries = self._retries.get(job.key, 0)
                if tries >= self.max_retries:
                    outcomes.append(failed_outcome(job, f"its worker process died {tries + 1} time(s) (BrokenProcessPool); max_retries is {self.max_retries}"))
                else:
                    self._retries[job.key] = tries + 1
                    self.submit([job])
        return outcomes
