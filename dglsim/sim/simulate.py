"""One entry point for every mode: `simulate` dispatches a spec to its mode's runner and engine.

Engines: a timing-only run (no callback) goes to the compiled kernel (`dglsim.sim.kernel`),
which gives the Python engine's trace row for row; a run with callbacks (training) goes to the
Python engine, the reference (`dglsim.sim.pipeline`, `dglsim.sim.paper`). `engine="python"`
asks for the Python engine; `engine="compiled"` insists on the kernel. Where numba cannot be
imported, "auto" falls back to the Python engine with a one-line warning: the trace is the same,
only slower.

A callback's period is in the mode's own clock and has its own argument: `every` in simulated
seconds for the event modes, `every_steps` in global steps for paper mode. Passing the other one
is an error, so a time and a count of steps are never mistaken for each other.
"""

from __future__ import annotations

import warnings
from typing import Callable

import numpy as np

from dglsim.errors import InvalidArgument
from dglsim.limits import check_memory
from dglsim.sim import kernel
from dglsim.sim.paper import simulate_paper
from dglsim.sim.pipeline import run_pipeline
from dglsim.sim.spec import PipelineSpec
from dglsim.sim.streams import Compute, Periodic, SimResult, Size
from dglsim.sim.trace import Trace

__all__ = ["simulate", "RUNNERS", "ENGINES"]

ENGINES = ("auto", "compiled", "python")
# What a run holds, for the memory limit checked before it starts: about four trace rows per
# update (start, finish, send, arrive); a Python tuple row is about 300 bytes, a packed row 61
# (before compression); the kernel also holds its drawn durations, 8 bytes per update and link.
ROWS_PER_UPDATE, TUPLE_ROW_BYTES, PACKED_ROW_BYTES, DRAW_BYTES = 4, 300, 61, 16


def _event_modes(spec, *, compute, forward, every, every_steps, size) -> SimResult:
    if every_steps is not None:
        raise InvalidArgument(f"'every_steps' of simulate is for paper mode (global steps); {spec.mode} mode takes 'every' (simulated seconds)")
    return run_pipeline(spec, compute=compute, every=every, size=size)


def _paper_mode(spec, *, compute, forward, every, every_steps, size) -> SimResult:
    if every is not None:
        raise InvalidArgument("'every' of simulate is in simulated seconds; paper mode has no time axis and takes 'every_steps' (global steps)")
    return simulate_paper(spec, compute=compute, forward=forward, every_steps=every_steps, size=size)


RUNNERS = {"sync": _event_modes, "async": _event_modes, "paper": _paper_mode}
_warned = []


def _check_memory(spec: PipelineSpec, engine: str, keep_trace: bool) -> None:
    updates = spec.k * spec.steps
    estimate = (ROWS_PER_UPDATE * TUPLE_ROW_BYTES * updates if engine == "python"
                else (ROWS_PER_UPDATE * PACKED_ROW_BYTES * updates if keep_trace else 0) + DRAW_BYTES * updates)
    check_memory(estimate, "its trace" if keep_trace or engine == "python" else "its drawn durations", "'steps' x 'workers' of PipelineSpec")


def simulate(spec: PipelineSpec, *, compute: Compute | None = None, forward: Compute | None = None,
             every: Periodic | None = None, every_steps: Periodic | None = None, size: Size | None = None,
             engine: str = "auto", keep_trace: bool = True, on_chunk: Callable[[np.ndarray], None] | None = None) -> SimResult:
    """Run `spec` in its mode. `compute(j, item)` runs an update and returns the payload sent on;
    `forward(j, item)` (paper mode) serves a module past its budget; `size(j, payload)` is the
    bytes of an item sent; `every` / `every_steps` = (period, callback(now)).

    `engine` (auto, compiled, python) as above. On the kernel, `on_chunk(rows)` sees each packed
    chunk of rows as it is sealed (valid during the call only), and `keep_trace=False` keeps
    none of them: the result's trace is then empty (summaries and files come from on_chunk).
    The Python engine gives the same chunks after its run."""
    if engine not in ENGINES:
        raise InvalidArgument(f"'engine' of simulate must be one of {list(ENGINES)}, got {engine!r}")
    for name, period in (("every", every), ("every_steps", every_steps)):
        if period is not None and not period[0] > 0:
            raise InvalidArgument(f"'{name}' period of simulate must be > 0, got {period[0]!r}")
    callbacks = [n for n, v in (("compute", compute), ("forward", forward), ("every", every), ("every_steps", every_steps), ("size", size)) if v is not None]
    if engine == "compiled" and callbacks:
        raise InvalidArgument(f"engine 'compiled' of simulate runs timing-only specs; callbacks {callbacks} need engine 'python' (or 'auto')")
    chosen = "python" if callbacks or engine == "python" else "compiled"
    if chosen == "compiled" and not kernel.available():
        if engine == "compiled":
            raise InvalidArgument(f"engine 'compiled' of simulate needs numba: {kernel.unavailable_reason()}")
        if not _warned:
            warnings.warn(f"{kernel.unavailable_reason()}: timing runs use the Python engine (the same traces, slower)", RuntimeWarning, stacklevel=2)
            _warned.append(True)
        chosen = "python"
    _check_memory(spec, chosen, keep_trace)
    if chosen == "compiled":
        return kernel.run_compiled(spec, keep=keep_trace, on_chunk=on_chunk)
    result = RUNNERS[spec.mode](spec, compute=compute, forward=forward, every=every, every_steps=every_steps, size=size)
    if on_chunk is not None:  # the Python engine holds its whole trace; its chunks are read afterwards
        for chunk in result.trace.chunks():
            on_chunk(chunk)
    if not keep_trace:
        result.trace = Trace()
    return result
