"""A study run of method "distributed": the real multi-process run and its calibrated simulated
twin, side by side (the sim_vs_real study).

1. A profiling run: the same network and data for one epoch, no injected delay. The simulator's
   per-module compute and per-link transfer models are fitted on its trace (dglsim.ranks.calibrate).
2. The real run of the config (K local ranks, one thread each).
3. The calibrated simulation of the same config, with the real updates (train_simulated), so
   that accuracy is predicted along with time.

Rows carry source "real" or "sim" and the compared quantities: wall-clock per epoch (makespan /
epochs), per module the throughput (updates / makespan), the utilization (busy time /
makespan), the staleness mean and 90th percentile of the items it trained on, and the final
test accuracy of every module.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import torch

from dglsim.models import build_network
from dglsim.ranks.calibrate import calibrated_spec, fit_calibration
from dglsim.ranks.run import run_real
from dglsim.recipe.cluster import compute_model, slowdowns
from dglsim.recipe.codecs import link_codecs
from dglsim.recipe.config import RunConfig
from dglsim.recipe.data import run_data, test_loader, train_loader
from dglsim.sim.metrics import summarize_trace
from dglsim.sim.trace import Trace
from dglsim.train.simulated import train_simulated

__all__ = ["run_distributed", "sync_capacity", "trace_quantities"]


def trace_quantities(trace: Trace, k: int, epochs: int) -> list[dict]:
    """The compared quantities of one run, from its trace (`summarize_trace`)."""
    summary = summarize_trace(trace, k)
    rows = [{"metric": "epoch_wallclock_s", "value": summary["makespan"] / epochs}]
    for j, worker in enumerate(summary["workers"]):
        rows += [{"module": j, "metric": "throughput", "value": worker["throughput"]},
                 {"module": j, "metric": "utilization", "value": worker["utilization"]}]
        if j > 0:
            rows += [{"module": j, "metric": "staleness_mean", "value": worker["staleness"]["mean"]},
                     {"module": j, "metric": "staleness_p90", "value": worker["staleness"]["p90"]}]
    return rows


def sync_capacity(in_flight: int) -> int:
    """Items a real sync consumer can be behind its producer: `in_flight` queued, one held by the
    receiver thread waiting for room, `in_flight` outstanding sends (dglsim.ranks.worker). The
    simulated twin's queue holds as many."""
    return 2 * in_flight + 1


def run_distributed(cfg: RunConfig, progress=None) -> tuple[list[dict], dict]:
    tcfg = cfg.train_config()
    with tempfile.TemporaryDirectory(prefix="dglsim-dist-") as tmp:
        profile_cfg = dataclasses.replace(cfg, epochs=1, slowdown=1.0, compute_jitter="constant")
        profile = run_real(profile_cfg, Path(tmp) / "profile", in_flight=cfg.in_flight)
        calibration = fit_calibration(profile.trace.to_array(), cfg.k)
        real = run_real(cfg, Path(tmp) / "real", in_flight=cfg.in_flight)
    if progress is not None:
        progress(cfg.k * len(real.results["updates"]["0"]["loss"]))  # the real run's updates
    train_set, test_set = run_data(cfg)
    net = build_network(cfg.network_spec(), seed=cfg.seed)
    train, test = train_loader(cfg, train_set), test_loader(test_set)
    spec = calibrated_spec(calibration, mode=cfg.pipeline, steps=tcfg.epochs * len(train), seed=cfg.seed,
                           buffer=sync_capacity(cfg.in_flight) if cfg.pipeline == "sync" else cfg.buffer, policy=cfg.policy, max_reuse=cfg.max_reuse, slowdown=slowdowns(cfg),
                           delay=compute_model(cfg, 1.0))  # the family the ranks inject
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each rank: the same kernels, so sync runs match update for update
    try:
        sim = train_simulated(net, train, test, tcfg, spec, codecs=link_codecs(cfg))
    finally:
        torch.set_num_threads(threads)
    rows = [r | {"source": "real"} for r in trace_quantities(real.trace, cfg.k, tcfg.epochs)]
    rows += [r | {"source": "sim"} for r in trace_quantities(sim.result.trace, cfg.k, tcfg.epochs)]
    # real ranks evaluate on float activations: compare the twin's figure of the same kind
    accuracy = "unquantized_test_accuracy" if cfg.quant != "none" else "test_accuracy"
    rows += [r | {"metric": "test_accuracy", "source": "real"} for r in real.results["rows"] if r["metric"] == accuracy]
    end = max(r["time"] for r in sim.rows)
    rows += [{"module": r["module"], "metric": "test_accuracy", "value": r["value"], "source": "sim"} for r in sim.rows
             if r["metric"] == accuracy and r["time"] == end]
    rows += [{"module": j, "metric": "calibrated_compute_s", "value": t} for j, t in enumerate(calibration.compute_s)]
    rows += [{"link": j, "metric": "calibrated_link_s", "value": t} for j, t in enumerate(calibration.link_s)]
    return rows, {"calibration": calibration.as_dict(), "real_provenance": real.results["provenance"], "real_wall_s": real.results["wall_s"]}
