"""The options of the launchers: the study file's `[launcher]` table updated by
`--set launcher.KEY=VALUE`; each launcher reads its own, and an unknown key is an error."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar

from dglsim.constraints import Constraint, int_at_least, one_of, optional, positive_real, validate_fields
from dglsim.errors import InvalidArgument

__all__ = ["LauncherOptions"]


def _text(v: Any) -> bool:
    return isinstance(v, str) and v != ""


@dataclass(frozen=True)
class LauncherOptions:
    cpus: int | None = None  # CPUs (and torch threads) of each run; default: this machine's cores / --jobs
    gpus: int | None = None  # GPUs of each run; default: 1 when the run's device is 'cuda...', else 0
    address: str | None = None  # ray: the cluster to use (else RAY_ADDRESS, else a local one for the study)
    max_retries: int = 2  # local, ray: reruns of a run whose worker process died
    cluster: str = "slurm"  # slurm: 'slurm', or 'local' (submitit runs the jobs as local processes)
    partition: str | None = None  # slurm
    time_min: int = 60  # slurm: the time limit of each job, in minutes
    mem_gb: float | None = None  # slurm: memory of each job
    array_parallelism: int = 256  # slurm: jobs of the array running at once
    max_requeues: int = 3  # slurm: requeues after a timeout before the run is failed (preemptions do not count)

    CONSTRAINTS: ClassVar[dict[str, Constraint]] = {
        "cpus": optional(int_at_least(1), missing="absent"),
        "gpus": optional(int_at_least(0), missing="absent"),
        "address": optional(Constraint("a non-empty string", _text, ("", 3)), missing="absent"),
        "max_retries": int_at_least(0),
        "cluster": one_of(("slurm", "local")),
        "partition": optional(Constraint("a non-empty string", _text, ("", 3)), missing="absent"),
        "time_min": int_at_least(1),
        "mem_gb": optional(positive_real(), missing="absent"),
        "array_parallelism": int_at_least(1),
        "max_requeues": int_at_least(0),
    }

    def __post_init__(self) -> None:
        validate_fields(self, self.CONSTRAINTS, owner="[launcher]")

    def gpus_for(self, devices: list[str]) -> int:
        """GPUs to declare for runs on `devices`: `gpus` when given, else 1 when any is cuda."""
        return self.gpus if self.gpus is not None else int(any(d.startswith("cuda") for d in devices))

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "LauncherOptions":
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise InvalidArgument(f"{unknown[0]!r} is not a [launcher] option; known: {known}")
        return cls(**values)
