"""A study run of method "scheduled": RunConfig -> a method's plan on the declared cluster ->
its real updates in simulated time -> tidy rows (accuracy over simulated time, memory and
idle time per device)."""

from __future__ import annotations

from dglsim.data.loader import BatchLoader
from dglsim.models.decoupled import DecoupledNet
from dglsim.recipe.cluster import cluster_times
from dglsim.recipe.config import RunConfig
from dglsim.recipe.rows import device_rows, loss_rows
from dglsim.recipe.schedule import action_costs, device_memory
from dglsim.schedule import build_plan, describe, peak_memory, run_plan
from dglsim.train.scheduled import train_scheduled

__all__ = ["run_scheduled"]


def run_scheduled(cfg: RunConfig, net: DecoupledNet, train: BatchLoader, test: BatchLoader, progress=None) -> tuple[list[dict], dict]:
    tcfg = cfg.train_config()
    cluster = cluster_times(cfg, net)
    costs = action_costs(cfg, net, cluster.seconds)
    memory = device_memory(cfg, net, cfg.schedule)
    plan = build_plan(cfg.schedule, cfg.k, tcfg.epochs * len(train), tcfg.batch_size, cfg.micro_batches)
    # the schedule alone first (torch-free, the same draws): its makespan spreads the evaluations
    makespan = run_plan(plan, costs, seed=cfg.seed).makespan
    run = train_scheduled(plan, costs, net, train, test, tcfg, micro_batches=cfg.micro_batches, seed=cfg.seed,
                          eval_interval=makespan / cfg.evals, progress=progress)
    peaks = peak_memory(run.result, memory)
    rows = run.rows + loss_rows(run.losses, len(train) * cfg.micro_batches)
    rows.append({"metric": "makespan", "value": run.result.makespan})
    rows += device_rows(peaks, run.result.bubble().tolist(), memory.static)
    rows += [{"module": j, "metric": "compute_time_s", "value": t} for j, t in enumerate(cluster.seconds)]
    extra = {"cluster": cluster.as_dict(), "compute_profile_s": list(cluster.seconds), "makespan": run.result.makespan,
             "plan": describe(plan, steps=2), "peak_memory_bytes": peaks,
             "messages": {f"{a}->{b}": {"messages": n, "bytes": size} for (a, b), (n, size) in sorted(run.result.messages.items())}}
    return rows, extra
