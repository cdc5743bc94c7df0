"""Module compute profiles for runs on a `profile` cluster: measured once per study, stored, reused.

Profiling is an explicit choice (`cluster = "profile"`): it makes the simulated cluster
whatever this machine's CPU, allocator and load happen to be. Profiling every run separately
would give every run slightly different times, hence a different simulated schedule for the
same seed; so the runner profiles each distinct network once, keeps the profile in the results
store with the machine's name and load (a resumed study reuses it), and writes the times into
the run configs before they are keyed. Runs on any other cluster are never profiled.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os

from dglsim.models import build_network
from dglsim.recipe.config import RunConfig
from dglsim.study.store import ResultsStore
from dglsim.train.simulated import profile_modules

__all__ = ["resolve_compute_times", "machine_load"]


def _profiled(cfg: RunConfig) -> dict:
    """What a profile depends on: the network, the batch size and the device."""
    return dataclasses.asdict(cfg.network_spec()) | {"batch_size": cfg.batch_size, "device": cfg.device}


def _profile_key(cfg: RunConfig) -> str:
    return hashlib.sha256(json.dumps(_profiled(cfg), sort_keys=True).encode()).hexdigest()[:20]


def machine_load() -> float | None:
    """The 1-minute load average (runnable processes), or None where the OS has none."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def resolve_compute_times(runs: list[RunConfig], store: ResultsStore, *, log=print) -> tuple[list[RunConfig], list[dict]]:
    """(`runs` with every profile-cluster run's times filled in from a stored or new profile,
    the profiles used: seconds, network, machine and load)."""
    from dglsim.recipe.device import resolve_device
    from dglsim.recipe.provenance import device_name

    resolved, used = [], {}
    for cfg in runs:
        if cfg.method not in ("simulated", "scheduled") or cfg.cluster != "profile" or cfg.compute_time is not None:
            resolved.append(cfg)
            continue
        key = _profile_key(cfg)
        stored = store.get_profile(key)
        if stored is None:
            device = resolve_device(cfg.device)
            net = build_network(cfg.network_spec(), seed=0).to(device)
            load = machine_load()
            seconds = profile_modules(net, cfg.batch_size)
            info = _profiled(cfg) | {"machine": device_name(device), "load": load}
            store.put_profile(key, seconds, info)
            log(f"profiled {cfg.arch} K={cfg.k} width {cfg.width} batch {cfg.batch_size} on {info['machine']} (load {load}): "
                + ", ".join(f"{1e3 * t:.2f}" for t in seconds) + " ms per update")
            stored = (seconds, info)
        used[key] = {"seconds": stored[0], **stored[1]}
        resolved.append(dataclasses.replace(cfg, compute_time=tuple(stored[0])))
    return resolved, list(used.values())
