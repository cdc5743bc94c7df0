"""Declared limits on work, so a typo cannot start a run that exhausts the machine.

Each limit is a bound with its reason. `--allow-large` on the CLIs (or DGLSIM_ALLOW_LARGE=1,
which the CLIs set, so worker processes inherit it) lifts every one of them: a large run is
possible, it only has to be asked for. Memory limits compare an estimate with the memory the
OS reports available (MemAvailable) and are skipped where it reports none.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from dglsim.errors import InvalidArgument

__all__ = ["ENV_VAR", "LIMITS", "Limit", "allowed", "check_limit", "check_memory", "available_memory"]

ENV_VAR = "DGLSIM_ALLOW_LARGE"
MEMORY_FRACTION = 0.5  # of the available memory, for one estimate


@dataclass(frozen=True)
class Limit:
    bound: int
    unit: str
    why: str


LIMITS = {
    "workers": Limit(4096, "workers", "more simulated devices than one pipeline of the clusters dglsim models"),
    "devices": Limit(65_536, "devices", "replicas of all modules together: each update samples one compute time per replica"),
    "updates": Limit(10_000_000, "updates per worker", "about a minute of simulation per million updates, and a trace row of ~300 bytes per event"),
    "global_steps": Limit(100_000_000, "global steps", "paper mode picks one module per step; a tiny pick probability makes the run endless"),
    "evals": Limit(1000, "evaluations", "each evaluates every module on the whole test set"),
}


def allowed() -> bool:
    return os.environ.get(ENV_VAR) == "1"


def _hint() -> str:
    return f"pass --allow-large (or set {ENV_VAR}=1) to run it anyway"


def check_limit(name: str, value: float, where: str) -> None:
    """InvalidArgument when `value` exceeds LIMITS[name] and large work is not allowed."""
    limit = LIMITS[name]
    if value > limit.bound and not allowed():
        raise InvalidArgument(f"{where} must be <= {limit.bound:,} {limit.unit} ({limit.why}), got {value:,.0f}; {_hint()}")


def available_memory() -> int | None:
    """Bytes the OS reports available (Linux MemAvailable), or None."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_memory(estimate: float, what: str, where: str) -> None:
    """InvalidArgument when `estimate` bytes exceed half the available memory and large work is not allowed."""
    free = available_memory()
    if free is not None and estimate > MEMORY_FRACTION * free and not allowed():
        raise InvalidArgument(f"{where} must fit in half the available memory ({free / 2**30:.1f} GiB available), "
                              f"but {what} needs an estimated {estimate / 2**30:.1f} GiB; {_hint()}")
