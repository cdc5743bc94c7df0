"""The simulated cluster a study declares: each module's base seconds per update, and its links.

A study simulates what its config declares, so the same config gives the same simulated
schedule on every machine:

- ``balanced``: every module takes the same time per update (`BALANCED_STEP_S` unless the
  config gives one). This is the authors' experiment: their scheduler picks every module at
  the same rate, and one is slowed.
- device names (one for all modules, or one per module): each module's time is the roofline
  time of its workload on that device (`dglsim.cluster.roofline`).
- ``given``: times the config states (for example fitted on a real run).
- ``profile``: times measured on the machine that runs the study. This is the one choice whose
  science depends on the machine; it is recorded with the machine's name and load.

Torch-free: workloads come in as numbers (`Workload`), counted by `dglsim.models.summarize`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from dglsim.cluster.devices import DEVICES, device
from dglsim.cluster.links import link
from dglsim.cluster.roofline import Workload, step_time
from dglsim.errors import InvalidArgument

__all__ = ["BALANCED_STEP_S", "CLUSTER_KINDS", "ClusterTimes", "balanced", "on_devices", "given", "profiled", "link_times", "is_cluster"]

BALANCED_STEP_S = 0.01  # seconds per update of every module of a balanced cluster
CLUSTER_KINDS = ("balanced", "given", "profile")


def is_cluster(value) -> bool:
    """A kind, a device name, or a tuple of device names (one per module)."""
    if isinstance(value, str):
        return value in CLUSTER_KINDS or value in DEVICES
    return isinstance(value, tuple) and len(value) > 0 and all(isinstance(v, str) and v in DEVICES for v in value)


@dataclass(frozen=True)
class ClusterTimes:
    """Base seconds per update of each module, and what they stand for."""

    kind: str  # balanced | devices | given | profile
    seconds: tuple[float, ...]
    description: str  # one clause for a caption
    detail: dict = field(default_factory=dict)  # provenance: devices and their sources, efficiency, machine

    def as_dict(self) -> dict:
        return {"kind": self.kind, "seconds": list(self.seconds), "description": self.description, **self.detail}


def _ms(seconds) -> str:
    return ", ".join(f"{1e3 * t:.3g}" for t in seconds) + " ms"


def balanced(k: int, step_s: float = BALANCED_STEP_S) -> ClusterTimes:
    return ClusterTimes("balanced", (float(step_s),) * k, f"balanced cluster ({1e3 * step_s:g} ms per update on every module)")


def on_devices(names: str | tuple[str, ...], works: list[Workload], batch: int, efficiency: float) -> ClusterTimes:
    """Roofline times of each module's workload on its device (one name for all, or one per module)."""
    names = (names,) * len(works) if isinstance(names, str) else tuple(names)
    if len(names) != len(works):
        raise InvalidArgument(f"'cluster' must name one device per module ({len(works)}), got {names!r}")
    devices = [device(n) for n in names]
    seconds = tuple(step_time(w, d, batch, efficiency) for w, d in zip(works, devices))
    which = names[0] if len(set(names)) == 1 else "/".join(names)
    return ClusterTimes("devices", seconds, f"simulated {which} roofline at efficiency {efficiency:g} ({_ms(seconds)} per update)",
                        {"devices": list(names), "sources": {d.name: d.source for d in devices}, "efficiency": efficiency})


def given(times: tuple[float, ...]) -> ClusterTimes:
    return ClusterTimes("given", tuple(float(t) for t in times), f"given compute times ({_ms(times)} per update)")


def profiled(times: tuple[float, ...], machine: str, load: float | None) -> ClusterTimes:
    load_text = "unknown load" if load is None else f"load {load:.2f}"
    return ClusterTimes("profile", tuple(float(t) for t in times),
                        f"times PROFILED ON THIS MACHINE ({machine}, {load_text}: {_ms(times)} per update; another machine gives another cluster)",
                        {"machine": machine, "load": load})


def link_times(name: str | None, latency: float, bandwidth: float | None) -> tuple[float, float, str]:
    """(latency s, bandwidth bytes/s, caption clause) of every link: a named link, or the values given."""
    if name is not None:
        chosen = link(name)
        return chosen.latency, chosen.bandwidth, f"{chosen.describe()} links"
    bw = math.inf if bandwidth is None else float(bandwidth)
    if latency == 0 and bw == math.inf:
        return 0.0, bw, "instant links"
    return float(latency), bw, f"links of {latency * 1e6:g} us latency and " + ("infinite bandwidth" if bw == math.inf else f"{bw / 1e9:.4g} GB/s")
