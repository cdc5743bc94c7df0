"""Memory per device, replayed from an executed plan: what each device holds over time and its peak.

A device always holds its parameters and optimizer state (and a DNI synthesizer's), the
`static` bytes. On top, each `Hold` of the plan (dglsim.schedule.plan) is allocated when its
first action starts and released when its last action finishes: a stash of saved activations
(GPipe keeps all m micro-batches' until their backwards, 1F1B at most min(K-j, m), DDG K-j
batches), a stored input (features replay), an output kept for a synthesizer. Its bytes are its
samples times the device's bytes per sample of that kind. At one instant releases come before
allocations: an action that starts as another finishes reuses its memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dglsim.errors import InvalidArgument
from dglsim.schedule.execute import PlanResult
from dglsim.schedule.plan import HOLDS

__all__ = ["DeviceMemory", "memory_timeline", "peak_memory"]


@dataclass(frozen=True)
class DeviceMemory:
    static: tuple[int, ...]  # per device: parameters, optimizer state, synthesizer
    per_sample: dict[str, tuple[int, ...]]  # per kind of hold (HOLDS), per device: bytes per sample

    def __post_init__(self) -> None:
        unknown = sorted(set(self.per_sample) - set(HOLDS))
        if unknown:
            raise InvalidArgument(f"'per_sample' of DeviceMemory must have keys among {list(HOLDS)}, got {unknown}")
        for what, values in self.per_sample.items():
            if len(values) != len(self.static):
                raise InvalidArgument(f"'per_sample[{what!r}]' of DeviceMemory must hold one value per device ({len(self.static)}), got {len(values)}")


def memory_timeline(result: PlanResult, memory: DeviceMemory) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per device: (times, bytes held from each time on), static bytes included."""
    plan = result.plan
    if len(memory.static) != plan.k:
        raise InvalidArgument(f"'memory' must describe the plan's {plan.k} devices, got {len(memory.static)}")
    times = result.times()
    events: list[list[tuple[float, int, int]]] = [[] for _ in range(plan.k)]
    for h in plan.holds:
        size = h.samples * memory.per_sample.get(h.what, (0,) * plan.k)[h.device]
        events[h.device].append((times[h.start][0], 1, size))  # allocations after releases at one instant
        events[h.device].append((times[h.until][1], 0, -size))
    out = []
    for j in range(plan.k):
        ev = sorted(events[j])
        t = np.array([0.0] + [e[0] for e in ev])
        held = memory.static[j] + np.concatenate([[0], np.cumsum([e[2] for e in ev])]) if ev else np.array([memory.static[j]])
        out.append((t, held))
    return out


def peak_memory(result: PlanResult, memory: DeviceMemory) -> list[int]:
    """Each device's peak bytes over the run."""
    return [int(held.max()) for _, held in memory_timeline(result, memory)]
