"""A study run of method "simulated": RunConfig -> pipeline spec -> DGL trained in simulated time -> tidy rows."""

from __future__ import annotations

import numpy as np

from dglsim.cluster import ClusterTimes, balanced, given, link_times, on_devices, profiled
from dglsim.data.loader import BatchLoader
from dglsim.delays import Constant, Straggler, lognormal
from dglsim.errors import InvalidArgument
from dglsim.models.decoupled import DecoupledNet, build_network
from dglsim.models.summary import workloads
from dglsim.quant import Codec
from dglsim.sim import PipelineSpec, paper_probabilities
from dglsim.sim.metrics import distribution
from dglsim.study.config import RunConfig
from dglsim.theory.staleness import async_staleness_bound
from dglsim.theory.training import estimate_assumptions, train_with_snapshots
from dglsim.train.simulated import batch_payload_bytes, train_simulated

__all__ = ["cluster_times", "compute_model", "link_codecs", "pipeline_spec", "run_simulated", "stopped_short", "updates_rows"]


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


def compute_model(cfg: RunConfig, base: float):
    """The run's compute-time family around `base` seconds (base 1: a factor of mean 1)."""
    if cfg.delay == "constant":
        return Constant(base)
    if cfg.delay == "lognormal":
        return lognormal(base, cfg.jitter_cv)
    return Straggler(Constant(base), cfg.straggler_q, cfg.straggler_factor)


def pipeline_spec(cfg: RunConfig, base_times: list[float], item_bytes: list[int], steps: int) -> PipelineSpec:
    """The simulated cluster of `cfg`: module j computes for base_times[j] (times the slowdown on
    module `slowed`, around the delay family), links carry item_bytes[j] at `bandwidth` after `latency`."""
    k = cfg.k
    slowdown = tuple(cfg.slowdown if j == cfg.slowed else 1.0 for j in range(k))
    latency, bandwidth, _ = link_times(cfg.link, cfg.latency, cfg.bandwidth)
    return PipelineSpec(
        mode=cfg.pipeline, workers=k, steps=steps, seed=cfg.seed,
        capacity=cfg.buffer, policy=cfg.policy, max_reuse=cfg.max_reuse,
        compute=tuple(compute_model(cfg, t) for t in base_times), slowdown=slowdown,
        latency=tuple(Constant(latency) for _ in range(k - 1)),
        bandwidth=bandwidth,
        payload_bytes=tuple(item_bytes[: k - 1]),
    )


def _expected_length(spec: PipelineSpec) -> float:
    """Rough length of the run, to spread the evaluations: simulated seconds of the slowest
    module, or global steps until the least-picked module is done (paper mode)."""
    if spec.mode == "paper":
        return spec.steps / float(paper_probabilities(spec).min())
    return spec.steps * max(spec.compute_model(j).mean for j in range(spec.k))


def _distribution_rows(updates: dict[str, np.ndarray], k: int) -> list[dict]:
    rows = []
    for j in range(k):
        mine = updates["module"] == j
        for name in ("staleness", "age", "reuse"):
            stats = distribution(updates[name][mine].astype(float))
            rows += [{"module": j, "metric": f"{name}_{s}", "value": stats[s]} for s in ("mean", "max", "p50", "p90") if s in stats]
        values, counts = np.unique(updates["staleness"][mine], return_counts=True)
        rows += [{"module": j, "metric": "staleness_count", "staleness": int(v), "value": int(c)} for v, c in zip(values, counts)]
    return rows


def _loss_rows(updates: dict[str, np.ndarray], k: int, per_epoch: int) -> list[dict]:
    rows = []
    for j in range(k):
        losses = updates["loss"][updates["module"] == j]
        for epoch in range(len(losses) // per_epoch):
            rows.append({"epoch": epoch + 1, "module": j, "metric": "train_loss", "value": float(losses[epoch * per_epoch : (epoch + 1) * per_epoch].mean())})
    return rows


def _staleness_bound_rows(cfg: RunConfig, spec: PipelineSpec, base: list[float]) -> list[dict]:
    """The staleness bound M + floor(l_max / c_min) of each consumer (proofs/05), where its
    premises hold: async, constant compute times and latency, no bandwidth limit, no reuse cap."""
    latency, bandwidth, _ = link_times(cfg.link, cfg.latency, cfg.bandwidth)
    if cfg.pipeline != "async" or cfg.delay != "constant" or bandwidth != float("inf") or cfg.max_reuse is not None:
        return []
    return [{"module": j, "metric": "staleness_bound", "value": async_staleness_bound(cfg.buffer, latency, base[j - 1] * spec.slowdown[j - 1])}
            for j in range(1, cfg.k)]


def updates_rows(done: list[int], planned: int) -> list[dict]:
    """Each module's updates and its budget. An async module with max_reuse stops short when its
    producer is done and no item is left to reuse (simulated and real alike): these rows say so."""
    return [{"module": j, "metric": "updates", "value": n} for j, n in enumerate(done)] + [{"metric": "planned_updates", "value": planned}]


def stopped_short(rows: list[dict]) -> dict[int, int]:
    """The modules of a run's rows that made fewer updates than planned: {module: updates}."""
    planned = next((r["value"] for r in rows if r["metric"] == "planned_updates"), None)
    return {r["module"]: r["value"] for r in rows if r["metric"] == "updates" and planned is not None and r["value"] < planned}


def link_codecs(cfg: RunConfig) -> list[Codec] | None:
    """One codec per link, each with its own random stream drawn from the run's seed (the same in
    a simulated run and in the real ranks of dglsim.dist, which then encode alike)."""
    k = cfg.k
    if cfg.quant == "none":
        return None
    seeds = np.random.SeedSequence([cfg.seed, 0x9A17]).generate_state(k - 1).tolist()
    return [Codec(cfg.quant_config(), seed=s) for s in seeds]


def run_simulated(cfg: RunConfig, net: DecoupledNet, train: BatchLoader, test: BatchLoader, progress=None) -> tuple[list[dict], dict]:
    """Train `net` under `cfg`'s simulated cluster; returns (tidy rows, provenance additions)."""
    tcfg = cfg.train_config()
    cluster = cluster_times(cfg, net)
    base = list(cluster.seconds)
    item_bytes = batch_payload_bytes(net, tcfg.batch_size)
    spec = pipeline_spec(cfg, base, item_bytes, tcfg.epochs * len(train))
    codecs = link_codecs(cfg)
    interval = _expected_length(spec) / cfg.evals
    if cfg.theory:
        run, snapshots = train_with_snapshots(net, train, test, tcfg, spec, interval=interval, codecs=codecs, progress=progress)
        probe = next(iter(test.epoch(0)))
        theory_rows = estimate_assumptions(net, snapshots, probe, run.updates, batch_size=min(tcfg.batch_size, len(probe[1])), seed=cfg.seed)
        theory_rows += _staleness_bound_rows(cfg, spec, base)
    else:
        run, theory_rows = train_simulated(net, train, test, tcfg, spec, eval_interval=interval, progress=progress, codecs=codecs), []
    rows = theory_rows + run.rows + _distribution_rows(run.updates, net.k) + _loss_rows(run.updates, net.k, len(train))
    rows += [{"link": link["link"], "metric": name, "value": value} for link in run.links for name, value in link.items() if name != "link"]
    rows.append({"metric": "makespan", "value": run.result.makespan})
    rows += [{"module": j, "metric": "buffer_bytes", "value": b} for j, b in enumerate(run.buffer_bytes)]
    rows += [{"module": j, "metric": "compute_time_s", "value": t} for j, t in enumerate(base)]
    rows += updates_rows(run.result.updates, spec.steps)
    links = link_times(cfg.link, cfg.latency, cfg.bandwidth)[2]
    extra = {"cluster": cluster.as_dict() | {"links": links}, "compute_profile_s": base, "buffer_bytes": run.buffer_bytes, "item_bytes": run.item_bytes, "updates": run.result.updates,
             "makespan": run.result.makespan, "links": run.links}
    return rows, extra
