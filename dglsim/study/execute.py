"""One run: data, network, training and evaluation for a RunConfig, in this process."""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Callable

import torch

from dglsim.data import BatchLoader, ImageSet, balanced_subset, first, first_per_class, load_cifar10, load_imagenette
from dglsim.data.cifar10 import AUTHORS_MEAN, AUTHORS_STD
from dglsim.errors import InvalidArgument
from dglsim.models import build_network, summarize
from dglsim.study.config import RunConfig
from dglsim.study.provenance import provenance
from dglsim.train import total_steps, train

__all__ = ["execute_run", "resolve_device", "run_data"]

_LOADERS = {"cifar10": load_cifar10, "imagenette": load_imagenette}


@functools.cache
def _dataset(name: str) -> tuple[ImageSet, ImageSet]:
    # Loaded once per process: a study's runs share the same in-memory uint8 tensors.
    return _LOADERS[name]()


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InvalidArgument(f"'device' of RunConfig must be available on this machine, got {name!r} (no CUDA device); use 'auto' or 'cpu'")
    return device


def run_data(cfg: RunConfig) -> tuple[ImageSet, ImageSet]:
    """The run's train and test sets: the dataset, subsampled per class with `subset_seed`."""
    train_set, test_set = _dataset(cfg.dataset)
    if tuple(train_set.shape) != tuple(cfg.input_shape):
        raise InvalidArgument(f"'input_shape' of RunConfig must match the {cfg.dataset} images {train_set.shape}, got {cfg.input_shape}")
    if cfg.classes != len(train_set.classes):
        raise InvalidArgument(f"'classes' of RunConfig must be the {len(train_set.classes)} classes of {cfg.dataset}, got {cfg.classes}")
    if cfg.subset == "first":  # the authors' subsets: file order
        if cfg.train_per_class is not None:
            train_set = first_per_class(train_set, cfg.train_per_class)
        if cfg.test_per_class is not None:
            test_set = first(test_set, cfg.test_per_class * len(test_set.classes))
    else:
        if cfg.train_per_class is not None:
            train_set = balanced_subset(train_set, cfg.train_per_class, seed=cfg.subset_seed)
        if cfg.test_per_class is not None:
            test_set = balanced_subset(test_set, cfg.test_per_class, seed=cfg.subset_seed + 1)
    if cfg.normalization == "authors":
        train_set, test_set = (dataclasses.replace(s, mean=AUTHORS_MEAN, std=AUTHORS_STD) for s in (train_set, test_set))
    return train_set, test_set


def execute_run(cfg: RunConfig, *, on_steps: Callable[[int, int], None] | None = None) -> dict:
    """Train and evaluate `cfg`. Returns {"rows", "provenance", "wall_s", "modules"}.

    on_steps(done, total) is called as updates complete (for progress display).
    """
    start = time.perf_counter()
    device = resolve_device(cfg.device)
    train_set, test_set = (s.to(device) for s in run_data(cfg))
    net = build_network(cfg.network_spec(), seed=cfg.seed).to(device)
    tcfg = cfg.train_config()
    train_loader = BatchLoader(train_set, tcfg.batch_size, shuffle=True, augment=cfg.augment, seed=cfg.seed, drop_last=True)
    test_loader = BatchLoader(test_set, 500, shuffle=False, augment=False)
    if cfg.method in ("simulated", "distributed"):  # every module makes its own epochs x batches updates
        total = net.k * tcfg.epochs * len(train_loader)
    else:
        total = total_steps(cfg.method, net.k, len(train_loader), tcfg)
    done = 0

    def progress(n: int) -> None:
        nonlocal done
        done += n
        if on_steps is not None:
            on_steps(done, total)

    extra: dict = {}
    if cfg.method == "simulated":
        from dglsim.study.simulated import run_simulated

        rows, extra = run_simulated(cfg, net, train_loader, test_loader, progress)
    elif cfg.method == "distributed":
        from dglsim.study.distributed import run_distributed

        rows, extra = run_distributed(cfg, progress)
    else:
        rows = train(cfg.method, net, train_loader, test_loader, tcfg, progress=progress)
    modules = [
        {"module": m.module, "params": m.stage_params, "head_params": m.head_params, "macs": m.stage_macs, "head_macs": m.head_macs, "head_share": m.head_share}
        for m in summarize(net)
    ]
    prov = provenance(device) | {"data": {"source": train_set.source, "notes": list(train_set.notes), "train": len(train_set), "test": len(test_set)}}
    if extra:
        prov["simulation"] = extra
    return {"rows": rows, "provenance": prov, "wall_s": time.perf_counter() - start, "modules": modules}
