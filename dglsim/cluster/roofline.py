"""Time of one local step of a module on a device, by the roofline model.

A module's local step (forward through its stage and head, backward, SGD update) on a batch of
B samples is summarised by its arithmetic and its memory traffic:

- FLOPs = 6 x MACs x B: the forward pass is 2 FLOPs per multiply-accumulate, the backward pass
  twice the forward (gradients of inputs and of weights; the usual 3x rule, e.g. Kaplan et al.
  2020, sec. 2.1);
- bytes = 4 x (3 x activations x B + 8 x parameters): every activation is written in the
  forward pass, read back and its gradient written in the backward pass; every float32
  parameter is read in the forward and the backward pass, its gradient written, and SGD with
  momentum reads weight, gradient and momentum and writes weight and momentum.

time = max(FLOPs / (efficiency x peak FLOP/s), bytes / (efficiency x memory bandwidth))
(Williams, Waterman, Patterson, "Roofline", CACM 2009). One efficiency factor covers both
roofs: it is what fraction of peak the kernels reach, a property of the software stack and
the layer sizes that the user sets or fits with `calibrate_efficiency`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dglsim.cluster.devices import Device
from dglsim.errors import InvalidArgument

__all__ = ["Workload", "step_time", "calibrate_efficiency"]


@dataclass(frozen=True)
class Workload:
    """What one module does per sample: multiply-accumulates and activation elements of its
    stage and head, and the number of parameters it updates."""

    macs: int
    activations: int
    params: int

    def flops(self, batch: int) -> float:
        return 6.0 * self.macs * batch

    def bytes(self, batch: int) -> float:
        return 4.0 * (3.0 * self.activations * batch + 8.0 * self.params)


def step_time(work: Workload, device: Device, batch: int, efficiency: float) -> float:
    """Seconds of one local step of `work` on `device` for a batch of `batch` samples."""
    if not (isinstance(efficiency, (int, float)) and 0 < efficiency <= 1):
        raise InvalidArgument(f"'efficiency' must be a real in (0, 1], got {efficiency!r}")
    return max(work.flops(batch) / (efficiency * device.peak_flops), work.bytes(batch) / (efficiency * device.memory_bandwidth))


def calibrate_efficiency(measured: list[float], works: list[Workload], device: Device, batch: int) -> float:
    """The efficiency that makes the roofline match measured step times: the geometric mean
    over modules of roofline-time-at-full-efficiency / measured time (a ratio model, so a
    log-scale fit)."""
    if len(measured) != len(works) or not measured or any(not t > 0 for t in measured):
        raise InvalidArgument(f"'measured' must be one positive time per workload ({len(works)}), got {measured!r}")
    ideal = np.array([step_time(w, device, batch, 1.0) for w in works])
    return float(np.exp(np.mean(np.log(ideal / np.asarray(measured)))))
