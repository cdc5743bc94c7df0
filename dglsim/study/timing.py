"""A study run of method "timing": RunConfig -> the declared cluster's pipeline spec -> its
simulated schedule (no training, no data) -> tidy rows of throughput and straggler cost.

Each run simulates its spec twice on the compiled kernel, keeping no trace (the summaries
stream): as declared, and with every replica's compute time replaced by its mean (constant
times at the same mean). The second is the run without stragglers; the fraction of time lost
to stragglers is 1 - throughput / throughput at constant times.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

from dglsim.delays import Constant
from dglsim.models.decoupled import DecoupledNet
from dglsim.models.summary import summarize
from dglsim.recipe.cluster import cluster_times, pipeline_spec
from dglsim.recipe.config import RunConfig
from dglsim.sim import PipelineSpec, kernel, simulate
from dglsim.sim.summary import TraceSummary
from dglsim.train.simulated import batch_payload_bytes

__all__ = ["run_timing", "FLOAT32_BYTES"]

FLOAT32_BYTES = 4  # a gradient entry


def _summary(spec: PipelineSpec) -> dict:
    summary = TraceSummary(spec.k)
    simulate(spec, keep_trace=False, on_chunk=summary.add)
    return summary.result()


def _throughput(metrics: dict, spec: PipelineSpec, samples_per_update: int) -> float:
    """Samples per simulated second: every module trains `steps` updates of samples_per_update
    samples, and the run takes the makespan."""
    return spec.steps * samples_per_update / metrics["makespan"]


def run_timing(cfg: RunConfig, net: DecoupledNet, progress: Callable[[int], None] | None = None) -> tuple[list[dict], dict]:
    """Simulate `cfg`'s schedule for `net`, whose workloads and sizes it reads (nothing trains);
    returns (tidy rows, provenance additions)."""
    cluster = cluster_times(cfg, net)
    modules = summarize(net)
    gradient_bytes = [FLOAT32_BYTES * (m.stage_params + m.head_params) for m in modules]
    spec = pipeline_spec(cfg, list(cluster.seconds), batch_payload_bytes(net, cfg.batch_size), cfg.steps, gradient_bytes)
    constant = replace(spec, compute=tuple(Constant(model.mean) for model in spec.compute))
    measured, reference = _summary(spec), _summary(constant)
    samples = cfg.replicas * cfg.batch_size
    throughput, ideal = _throughput(measured, spec, samples), _throughput(reference, constant, samples)
    rows = [
        {"metric": "throughput", "value": throughput},
        {"metric": "constant_throughput", "value": ideal},
        {"metric": "straggler_fraction", "value": 1 - throughput / ideal},
        {"metric": "makespan_s", "value": measured["makespan"]},
        {"metric": "devices", "value": cfg.k * cfg.replicas},
    ]
    for j, (w, c) in enumerate(zip(measured["workers"], reference["workers"])):
        update_s = w["busy"] / w["updates"]
        rows += [
            {"module": j, "metric": "compute_time_s", "value": cluster.seconds[j]},
            {"module": j, "metric": "allreduce_s", "value": spec.allreduce_seconds(j)},
            {"module": j, "metric": "update_s", "value": update_s},
            {"module": j, "metric": "constant_update_s", "value": c["busy"] / c["updates"]},
            {"module": j, "metric": "allreduce_share", "value": spec.allreduce_seconds(j) / update_s},
            {"module": j, "metric": "utilization", "value": w["utilization"]},
            {"module": j, "metric": "gradient_bytes", "value": gradient_bytes[j]},
        ]
        if j > 0:
            rows.append({"module": j, "metric": "staleness_mean", "value": w["staleness"].get("mean", 0.0)})
    if progress is not None:
        progress(cfg.k * cfg.steps)
    extra = {"cluster": cluster.as_dict(), "replicas": cfg.replicas, "allreduce": cfg.allreduce, "devices": cfg.k * cfg.replicas,
             "engine": "compiled" if kernel.available() else "python"}
    return rows, extra
