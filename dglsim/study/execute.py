"""One run: data, network, training and evaluation for a RunConfig, in this process."""

from __future__ import annotations

import time
from typing import Callable

import torch

from dglsim.models import build_network, summarize
from dglsim.recipe.config import RunConfig
from dglsim.recipe.data import run_data, test_loader, train_loader
from dglsim.recipe.device import resolve_device
from dglsim.recipe.provenance import provenance
from dglsim.train import total_steps
from dglsim.train import train as train_method
from dglsim.train.checkpoint import EpochCheckpoint

__all__ = ["execute_run"]


def execute_run(cfg: RunConfig, *, on_steps: Callable[[int, int], None] | None = None, checkpoint: EpochCheckpoint | None = None) -> dict:
    """Train and evaluate `cfg`. Returns {"rows", "provenance", "wall_s", "modules"}.

    on_steps(done, total) is called as updates complete (for progress display). With
    `checkpoint`, the epoch-loop methods save their state after every epoch and resume from it;
    simulated, scheduled and distributed runs have no epoch boundary and ignore it (they restart).
    """
    start = time.perf_counter()
    if cfg.method == "timing":  # a schedule alone: no data, no training
        return _execute_timing(cfg, start, on_steps)
    device = resolve_device(cfg.device)
    train_set, test_set = (s.to(device) for s in run_data(cfg))
    net = build_network(cfg.network_spec(), seed=cfg.seed).to(device)
    tcfg = cfg.train_config()
    train, test = train_loader(cfg, train_set), test_loader(test_set)
    if cfg.method in ("simulated", "distributed", "scheduled"):  # every module makes its own epochs x batches updates
        total = net.k * tcfg.epochs * len(train)
    else:
        total = total_steps(cfg.method, net.k, len(train), tcfg)
    done = 0

    def progress(n: int) -> None:
        nonlocal done
        done += n
        if on_steps is not None:
            on_steps(done, total)

    extra: dict = {}
    if cfg.method == "simulated":
        from dglsim.study.simulated import run_simulated

        rows, extra = run_simulated(cfg, net, train, test, progress)
    elif cfg.method == "scheduled":
        from dglsim.study.scheduled import run_scheduled

        rows, extra = run_scheduled(cfg, net, train, test, progress)
    elif cfg.method == "distributed":
        from dglsim.study.distributed import run_distributed

        rows, extra = run_distributed(cfg, progress)
    else:
        rows = train_method(cfg.method, net, train, test, tcfg, progress=progress, checkpoint=checkpoint)
    prov = provenance(device) | {"data": {"source": train_set.source, "notes": list(train_set.notes), "train": len(train_set), "test": len(test_set)}}
    if extra:
        prov["simulation"] = extra
    return {"rows": rows, "provenance": prov, "wall_s": time.perf_counter() - start, "modules": _modules(net)}


def _modules(net) -> list[dict]:
    return [{"module": m.module, "params": m.stage_params, "head_params": m.head_params, "macs": m.stage_macs, "head_macs": m.head_macs, "head_share": m.head_share}
            for m in summarize(net)]


def _execute_timing(cfg: RunConfig, start: float, on_steps: Callable[[int, int], None] | None) -> dict:
    from dglsim.study.timing import run_timing

    total = cfg.k * cfg.steps
    net = build_network(cfg.network_spec(), seed=0)  # its workloads and sizes only: nothing trains
    rows, extra = run_timing(cfg, net, progress=(lambda n: on_steps(n, total)) if on_steps is not None else None)
    prov = provenance(torch.device("cpu")) | {"simulation": extra}  # the schedule is simulated on the CPU; the devices are declared
    return {"rows": rows, "provenance": prov, "wall_s": time.perf_counter() - start, "modules": _modules(net)}
