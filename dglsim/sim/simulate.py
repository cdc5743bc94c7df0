"""One entry point for every mode: `simulate` dispatches a spec to its mode's runner.

A callback's period is in the mode's own clock and has its own argument: `every` in simulated
seconds for the event modes, `every_steps` in global steps for paper mode. Passing the other one
is an error, so a time and a count of steps are never mistaken for each other.
"""

from __future__ import annotations

from dglsim.errors import InvalidArgument
from dglsim.sim.paper import simulate_paper
from dglsim.sim.pipeline import run_pipeline
from dglsim.sim.spec import PipelineSpec
from dglsim.sim.streams import Compute, Periodic, SimResult, Size

__all__ = ["simulate", "RUNNERS"]


def _event_modes(spec, *, compute, forward, every, every_steps, size) -> SimResult:
    if every_steps is not None:
        raise InvalidArgument(f"'every_steps' of simulate is for paper mode (global steps); {spec.mode} mode takes 'every' (simulated seconds)")
    return run_pipeline(spec, compute=compute, every=every, size=size)


def _paper_mode(spec, *, compute, forward, every, every_steps, size) -> SimResult:
    if every is not None:
        raise InvalidArgument("'every' of simulate is in simulated seconds; paper mode has no time axis and takes 'every_steps' (global steps)")
    return simulate_paper(spec, compute=compute, forward=forward, every_steps=every_steps, size=size)


RUNNERS = {"sync": _event_modes, "async": _event_modes, "paper": _paper_mode}


def simulate(spec: PipelineSpec, *, compute: Compute | None = None, forward: Compute | None = None,
             every: Periodic | None = None, every_steps: Periodic | None = None, size: Size | None = None) -> SimResult:
    """Run `spec` in its mode. `compute(j, item)` runs an update and returns the payload sent on;
    `forward(j, item)` (paper mode) serves a module past its budget; `size(j, payload)` is the
    bytes of an item sent; `every` / `every_steps` = (period, callback(now))."""
    for name, period in (("every", every), ("every_steps", every_steps)):
        if period is not None and not period[0] > 0:
            raise InvalidArgument(f"'{name}' period of simulate must be > 0, got {period[0]!r}")
    return RUNNERS[spec.mode](spec, compute=compute, forward=forward, every=every, every_steps=every_steps, size=size)
