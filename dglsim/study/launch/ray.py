"""The Ray launcher: each run is one Ray task with its CPUs and GPUs declared.

The cluster is the one at `[launcher] address` / `--address`, else RAY_ADDRESS, else a local
one that the launcher starts with `jobs x cpus` CPUs (so `--jobs` runs at once, as with the
local launcher) and stops at the end. A task whose worker process dies is rerun by Ray up to
`max_retries` times (Ray's retries of system failures); a run that raises is not retried: its
traceback comes back as a failed outcome. Workers must run the same dglsim revision: each run
records the revision it ran, and the driver refuses a report that mixes them.
"""

from __future__ import annotations

import os

from dglsim.study.launch.options import LauncherOptions
from dglsim.study.launch.work import RunJob, failed_outcome, run_job

__all__ = ["RayLauncher"]

# the environment a run's numbers or its data depend on, passed on to workers of a remote cluster
_PASSED_ENV = ("DGLSIM_DATA", "DGLSIM_REQUIRE_DATA", "DGLSIM_ALLOW_LARGE")


class RayLauncher:
    name = "ray"

    def __init__(self, options: LauncherOptions, *, jobs: int, threads: int) -> None:
        self.options, self.jobs, self.threads = options, jobs, threads
        self._refs: dict = {}

    def __enter__(self) -> "RayLauncher":
        import ray

        address = self.options.address or os.environ.get("RAY_ADDRESS")
        env = {"env_vars": {k: os.environ[k] for k in _PASSED_ENV if k in os.environ}}
        if address:
            ray.init(address=address, runtime_env=env, log_to_driver=False)
        else:  # a cluster of this machine for this study only ('local' never joins another one)
            ray.init(address="local", num_cpus=self.jobs * self.threads, include_dashboard=False, log_to_driver=False)
        return self

    def __exit__(self, *exc) -> None:
        import ray

        ray.shutdown()  # disconnects; stops the cluster when this launcher started it

    @property
    def outstanding(self) -> int:
        return len(self._refs)

    def submit(self, jobs: list[RunJob]) -> None:
        import ray

        task = ray.remote(run_job)
        for job in jobs:
            ref = task.options(num_cpus=self.threads, num_gpus=self.options.gpus_for([job.cfg.device]), max_retries=self.options.max_retries, retry_exceptions=False).remote(job)
            self._refs[ref] = job

    def wait(self, timeout: float) -> list[dict]:
        import ray

        ready, _ = ray.wait(list(self._refs), num_returns=1, timeout=timeout)
        if ready:  # and whatever else is done by now
            ready, _ = ray.wait(list(self._refs), num_returns=len(self._refs), timeout=0)
        outcomes = []
        for ref in ready:
            job = self._refs.pop(ref)
            try:
                outcomes.append(ray.get(ref))
            except ray.exceptions.RayError as exc:  # the worker died more often than max_retries, or the node was lost
                outcomes.append(failed_outcome(job, f"{type(exc).__name__}: {exc}"))
        return outcomes
