"""A run's simulated cluster: the base seconds per update of each module (dglsim.cluster), the
compute-time family around them, the slowed module, the links, and the pipeline spec they make."""

from __future__ import annotations

from dglsim.cluster import ClusterTimes, balanced, given, link_times, on_devices, profiled
from dglsim.delays import Constant, DelayModel, Straggler, lognormal
from dglsim.errors import InvalidArgument
from dglsim.models.decoupled import DecoupledNet, build_network
from dglsim.models.summary import workloads
from dglsim.recipe.config import RunConfig
from dglsim.sim import PipelineSpec, paper_probabilities
from dglsim.sim.collectives import AllReduce

__all__ = ["cluster_times", "compute_model", "slowdowns", "pipeline_spec", "expected_length"]


def cluster_times(cfg: RunConfig, net: DecoupledNet | None = None, *, machine: dict | None = None) -> ClusterTimes:
    """The base seconds per update of each module on `cfg`'s declared cluster. Never measures:
    a "profile" cluster's times were measured by the study runner and written into the config,
    and `machine` ({"machine", "load"} of that profile) only describes them. A device cluster
    needs the network's workloads: `net`, or the network `cfg` builds."""
    if cfg.cluster == "balanced":
        return balanced(cfg.k) if cfg.compute_time is None else balanced(cfg.k, cfg.compute_time)
    if cfg.cluster in ("given", "profile"):
        if cfg.compute_time is None:
            raise InvalidArgument("'compute_time' of RunConfig must be resolved before a simulated run on a 'profile' cluster (the study runner profiles the modules), got None")
        times = cfg.compute_time if isinstance(cfg.compute_time, tuple) else (cfg.compute_time,) * cfg.k
        if cfg.cluster == "given":
            return given(times)
        machine = machine or {}
        return profiled(times, machine.get("machine", "this machine"), machine.get("load"))
    net = net if net is not None else build_network(cfg.network_spec(), seed=0)
    return on_devices(cfg.cluster, workloads(net), cfg.batch_size, cfg.efficiency)


def compute_model(cfg: RunConfig, base: float) -> DelayModel:
    """The run's compute-time family around `base` seconds (base 1: a factor of mean 1)."""
    if cfg.compute_jitter == "constant":
        return Constant(base)
    if cfg.compute_jitter == "lognormal":
        return lognormal(base, cfg.jitter_cv)
    if cfg.compute_jitter == "lognormal_straggler":
        return Straggler(lognormal(base, cfg.jitter_cv), cfg.straggler_q, cfg.straggler_factor)
    return Straggler(Constant(base), cfg.straggler_q, cfg.straggler_factor)


def pipeline_spec(cfg: RunConfig, base_times: list[float], item_bytes: list[int], steps: int,
                  gradient_bytes: list[int] | None = None) -> PipelineSpec:
    """The simulated cluster of `cfg`: module j computes for base_times[j] (times the slowdown on
    module `slowed`, around the delay family), links carry item_bytes[j] at `bandwidth` after `latency`.
    With cfg.replicas = N > 1, every module runs on N replicas, each on item_bytes' batch: an
    item is N batches (N x item_bytes[j], sent over N links side by side), and each update ends
    with the all-reduce of gradient_bytes[j] over the same links."""
    k, n = cfg.k, cfg.replicas
    latency, bandwidth, _ = link_times(cfg.link, cfg.latency, cfg.bandwidth)
    parallel = {}
    if n > 1:
        if gradient_bytes is None:
            raise InvalidArgument(f"'gradient_bytes' of pipeline_spec must be given when replicas = {n} (what each update all-reduces)")
        parallel = {"replicas": (n,) * k, "gradient_bytes": tuple(int(b) for b in gradient_bytes), "allreduce": AllReduce(cfg.allreduce, bandwidth, latency)}
    return PipelineSpec(
        mode=cfg.pipeline, workers=k, steps=steps, seed=cfg.seed,
        buffer=cfg.buffer, policy=cfg.policy, max_reuse=cfg.max_reuse,
        compute=tuple(compute_model(cfg, t) for t in base_times), slowdown=slowdowns(cfg),
        latency=tuple(Constant(latency) for _ in range(k - 1)),
        bandwidth=bandwidth,
        payload_bytes=tuple(b * n for b in item_bytes[: k - 1]),
        **parallel,
    )


def slowdowns(cfg: RunConfig) -> tuple[float, ...]:
    """Each module's compute-time factor: `slowdown` on module `slowed`, 1 elsewhere."""
    return tuple(cfg.slowdown if j == cfg.slowed else 1.0 for j in range(cfg.k))


def expected_length(spec: PipelineSpec, link_bytes: list[int] | None = None) -> float:
    """Rough length of the run, to spread the evaluations: simulated seconds of the slowest
    station, a module's compute or a link's transfer of `link_bytes[j]` bytes per item (what the
    run's codecs send; a link-bound run is longer than its modules' compute), or global steps
    until the least-picked module is done (paper mode)."""
    if spec.mode == "paper":
        return spec.steps / float(paper_probabilities(spec).min())
    slowest = max(spec.compute_model(j).mean for j in range(spec.k))
    if link_bytes is not None:
        slowest = max([slowest] + [spec.latency[j].mean + link_bytes[j] / spec.link_rate(j) for j in range(spec.k - 1)])
    return spec.steps * slowest


