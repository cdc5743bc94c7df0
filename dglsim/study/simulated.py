"""A study run of method "simulated": RunConfig -> pipeline spec -> DGL trained in simulated time -> tidy rows."""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np

from dglsim.cluster import link_times
from dglsim.data.loader import BatchLoader
from dglsim.models.decoupled import DecoupledNet
from dglsim.recipe.cluster import cluster_times, expected_length, pipeline_spec
from dglsim.recipe.codecs import expected_link_bytes, link_codecs
from dglsim.recipe.config import RunConfig
from dglsim.recipe.rows import device_rows, loss_rows, updates_rows
from dglsim.recipe.schedule import device_memory
from dglsim.sim import PipelineSpec
from dglsim.sim.metrics import distribution, summarize_trace
from dglsim.theory.staleness import async_staleness_bound
from dglsim.theory.training import estimate_assumptions, train_with_snapshots, training_probe
from dglsim.train.simulated import batch_payload_bytes, train_simulated

__all__ = ["run_simulated"]

HESSIAN_ITERS = 10  # power iterations for the top Hessian eigenvalue: most of the estimates' cost


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


def _staleness_bound_rows(cfg: RunConfig, spec: PipelineSpec, base: list[float]) -> list[dict]:
    """The staleness bound M + floor(l_max / c_min) of each consumer (proofs/05), where its
    premises hold: async, constant compute times and latency, no bandwidth limit, no reuse cap."""
    latency, bandwidth, _ = link_times(cfg.link, cfg.latency, cfg.bandwidth)
    if cfg.pipeline != "async" or cfg.compute_jitter != "constant" or bandwidth != float("inf") or cfg.max_reuse is not None:
        return []
    return [{"module": j, "metric": "staleness_bound", "value": async_staleness_bound(cfg.buffer, latency, base[j - 1] * spec.slowdown[j - 1])}
            for j in range(1, cfg.k)]


def _reference_state(cfg: RunConfig, net: DecoupledNet, train: BatchLoader, test: BatchLoader, base: list[float], item_bytes: int) -> dict:
    """The limit law's network: `net` (a copy of the run's start) trained in the run's setting for
    reference_epochs, from the same seed and data order, with its own links' codecs. In a
    deterministic setting its first epochs are the run itself; the rest carries it to convergence
    under the decaying learning rate, so c_t is measured against a limit, not the run's own end."""
    tcfg = replace(cfg.train_config(), epochs=cfg.reference_epochs)
    spec = pipeline_spec(cfg, base, item_bytes, tcfg.epochs * len(train))
    train_simulated(net, train, test, tcfg, spec, codecs=link_codecs(cfg))
    return copy.deepcopy(net.state_dict())


def _peak_memory(cfg: RunConfig, net: DecoupledNet, batch: int, buffer_bytes: list[int]) -> list[int]:
    """Each device's peak: what a DGL plan's device holds (parameters, optimizer state, one local
    step's stash; dglsim.recipe.schedule) plus the peak of its input queue or replay buffer.
    An upper bound: the stash and the buffer's peak may not coincide."""
    memory = device_memory(cfg, net, "dgl")
    return [memory.static[j] + batch * memory.per_sample["stash"][j] + buffer_bytes[j] for j in range(net.k)]


def run_simulated(cfg: RunConfig, net: DecoupledNet, train: BatchLoader, test: BatchLoader, progress=None) -> tuple[list[dict], dict]:
    """Train `net` under `cfg`'s simulated cluster; returns (tidy rows, provenance additions)."""
    tcfg = cfg.train_config()
    cluster = cluster_times(cfg, net)
    base = list(cluster.seconds)
    item_bytes = batch_payload_bytes(net, tcfg.batch_size)
    spec = pipeline_spec(cfg, base, item_bytes, tcfg.epochs * len(train))
    codecs = link_codecs(cfg)
    interval = expected_length(spec, expected_link_bytes(cfg, net, tcfg.batch_size)) / cfg.evals
    if cfg.theory:
        limit = _reference_state(cfg, copy.deepcopy(net), train, test, base, item_bytes)
        run, snapshots = train_with_snapshots(net, train, test, tcfg, spec, interval=interval, codecs=codecs, progress=progress)
        probe = training_probe(train)
        theory_rows = estimate_assumptions(net, snapshots, probe, run.updates, limit=limit, batch_size=min(tcfg.batch_size, len(probe[1])),
                                           hessian_iters=HESSIAN_ITERS, seed=cfg.seed)
        theory_rows += _staleness_bound_rows(cfg, spec, base)
    else:
        run, theory_rows = train_simulated(net, train, test, tcfg, spec, eval_interval=interval, progress=progress, codecs=codecs), []
    rows = theory_rows + run.rows + _distribution_rows(run.updates, net.k) + loss_rows({j: run.updates["loss"][run.updates["module"] == j] for j in range(net.k)}, len(train))
    rows += [{"link": link["link"], "metric": name, "value": value} for link in run.links for name, value in link.items() if name != "link"]
    # every publication's codebook drift (dglsim.quant.codec): what says whether a codebook has converged
    rows += [{"link": j, "metric": "publication_drift", "publication": i + 1, "value": d} for j, c in enumerate(codecs or []) for i, d in enumerate(c.drift)]
    rows.append({"metric": "makespan", "value": run.result.makespan})
    rows += [{"module": j, "metric": "buffer_bytes", "value": b} for j, b in enumerate(run.buffer_bytes)]
    rows += device_rows(_peak_memory(cfg, net, tcfg.batch_size, run.buffer_bytes), [w["idle_fraction"] for w in summarize_trace(run.result.trace, net.k)["workers"]],
                        device_memory(cfg, net, "dgl").static)
    rows += [{"module": j, "metric": "compute_time_s", "value": t} for j, t in enumerate(base)]
    rows += updates_rows(run.result.updates, spec.steps)
    links = link_times(cfg.link, cfg.latency, cfg.bandwidth)[2]
    extra = {"cluster": cluster.as_dict() | {"links": links}, "compute_profile_s": base, "buffer_bytes": run.buffer_bytes, "item_bytes": run.item_bytes, "updates": run.result.updates,
             "makespan": run.result.makespan, "links": run.links}
    return rows, extra
