"""Synchronous DGL as a plan: a sync spec run on the plan executor (`dglsim.schedule`), which
gives the pipeline's own trace, byte for byte (a test checks it over specs).

The DGL plan (`build_plan("dgl", ...)`) holds each module's local steps and the dependency of
step t of module j on step t of module j-1. What the spec adds is run-time: the queue capacity
(`run_plan(capacity=buffer)`, back-pressure), the durations (the spec's own compute streams,
`worker_streams`, drawn in the same order), and the links (their bytes, bandwidth and constant
latency). The pipeline's rows (items, versions, staleness, ages, queue lengths) come from the
executor's `trace=True`.

Asynchronous DGL is not a plan: which item a module trains on is drawn from its replay buffer by
the policy at run time, so it stays a mode of `dglsim.sim.pipeline`. Neither is a spec whose
links differ from each other, whose latency varies, whose fresh data arrives by a process, or
whose modules are replicated: `sync_plan` names what it cannot carry.
"""

from __future__ import annotations

from dglsim.delays import Constant
from dglsim.errors import InvalidArgument
from dglsim.schedule import ActionCosts, Plan, build_plan, run_plan
from dglsim.sim.spec import PipelineSpec
from dglsim.sim.streams import Periodic, SimResult, worker_streams
from dglsim.sim.trace import Trace

__all__ = ["sync_plan", "run_sync_as_plan"]


def sync_plan(spec: PipelineSpec) -> tuple[Plan, ActionCosts]:
    """The DGL plan of `spec` and its link costs (durations come from the spec's streams)."""
    k = spec.k
    problems = []
    if spec.mode != "sync":
        problems.append(f"mode must be 'sync' (async DGL samples its buffers at run time: not a plan), got {spec.mode!r}")
    if spec.arrival is not None:
        problems.append("arrival must be absent (the plan's module 0 reads fresh data at once)")
    if spec.replicas is not None or spec.replica_slowdown is not None or spec.allreduce is not None:
        problems.append("replicas, replica_slowdown and allreduce must be absent (one device per module)")
    latencies = [spec.link_delay(j)[0] for j in range(k - 1)]
    if not all(isinstance(m, Constant) for m in latencies) or len({m.value for m in latencies}) > 1:
        problems.append(f"latency must be one constant for every link, got {latencies!r}")
    if problems:
        raise InvalidArgument("a spec run as a plan: " + "; ".join(problems))
    latency = float(latencies[0].value) if latencies else 0.0
    # step_seconds only label the costs: the run draws its durations from the spec's streams
    costs = ActionCosts(tuple(spec.compute_model(j).mean or 1.0 for j in range(k)), activation_bytes=tuple(spec.bytes_on(j) for j in range(k - 1)),
                        latency=latency, bandwidth=spec.bandwidth)
    return build_plan("dgl", k, spec.steps, 1), costs


def run_sync_as_plan(spec: PipelineSpec, *, every: Periodic | None = None) -> SimResult:
    """Run a sync `spec` as the DGL plan; the result is that of `dglsim.sim.run_pipeline`."""
    plan, costs = sync_plan(spec)
    result = run_plan(plan, costs, capacity=spec.buffer, durations=worker_streams(spec).compute, trace=True, every=every)
    trace = Trace(result.trace_rows)
    return SimResult(spec, trace, [spec.steps] * spec.k, trace.rows[-1][0] if trace.rows else 0.0, result.events)
