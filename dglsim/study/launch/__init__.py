"""Launchers: where a study's runs execute. The driver (dglsim.study.runner) is the same for all
of them: it hands pending runs to a launcher, takes back each run's outcome and alone commits
it to the results store.

- `local`: this machine; in the driver's process with `--jobs 1`, else a pool of processes.
- `ray`: one Ray task per run, with its CPUs and GPUs declared, on the cluster at
  `--address` / RAY_ADDRESS or on a local one started for the study (`pip install dglsim[ray]`).
- `slurm`: one submitit job per run, submitted as a job array; a job that times out or is
  preempted is requeued and resumes from its last epoch (`pip install dglsim[slurm]`).

Options: dglsim.study.launch.options. A new launcher is a class with `name`, `threads`,
`outstanding`, `submit(jobs)` and `wait(timeout) -> outcomes`, used as a context manager (see
local.py), and a branch in `make_launcher`.
"""

from __future__ import annotations

import os

from dglsim.errors import InvalidArgument
from dglsim.study.launch.options import LauncherOptions

__all__ = ["LAUNCHERS", "LauncherOptions", "default_threads", "make_launcher"]

LAUNCHERS = ("local", "ray", "slurm")
_EXTRA = {"ray": ("ray", "dglsim[ray]"), "slurm": ("submitit", "dglsim[slurm]")}


def default_threads(jobs: int) -> int:
    """torch threads of each run: all of them with one job, this machine's cores shared out among jobs."""
    import torch

    return torch.get_num_threads() if jobs == 1 else max(1, (os.cpu_count() or 1) // jobs)


def require_extra(launcher: str) -> None:
    """A clear error, naming the install, when the launcher's package is missing."""
    module, extra = _EXTRA[launcher]
    try:
        __import__(module)
    except ImportError:
        raise InvalidArgument(f"'--launcher {launcher}' needs the {module!r} package, which is not installed: pip install '{extra}'") from None


def make_launcher(name: str, options: LauncherOptions, *, jobs: int, threads: int):
    """The launcher `name` (a context manager: it starts and stops what it needs)."""
    if name not in LAUNCHERS:
        raise InvalidArgument(f"'--launcher' must be one of {list(LAUNCHERS)}, got {name!r}")
    if name == "local":
        from dglsim.study.launch.local import LocalLauncher

        return LocalLauncher(jobs=jobs, threads=threads, max_retries=options.max_retries)
    require_extra(name)
    if name == "ray":
        from dglsim.study.launch.ray import RayLauncher

        return RayLauncher(options, jobs=jobs, threads=threads)
    from dglsim.study.launch.slurm import SlurmLauncher

    return SlurmLauncher(options, jobs=jobs, threads=threads)
