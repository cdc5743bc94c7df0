"""Module compute profiles for simulated runs: measured once per study, stored, reused.

A simulated run whose `compute_time` is None takes its modules' base times from a profile of
the network on the present device. Profiling every run separately would give every run
slightly different times, hence a different simulated schedule and different results for the
same seed; so the runner profiles each distinct network once, keeps the profile in the
results store (a resumed study reuses it), and writes the times into the run configs before
they are keyed. The profile is then part of each run's config and of its results.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

from dglsim.models import build_network
from dglsim.study.config import RunConfig
from dglsim.study.store import ResultsStore
from dglsim.train.simulated import profile_modules

__all__ = ["resolve_compute_times"]

def _profiled(cfg: RunConfig) -> dict:
    """What a profile depends on: the network, the batch size and the device."""
    return dataclasses.asdict(cfg.network_spec()) | {"batch_size": cfg.batch_size, "device": cfg.device}


def _profile_key(cfg: RunConfig) -> str:
    return hashlib.sha256(json.dumps(_profiled(cfg), sort_keys=True).encode()).hexdigest()[:20]


def resolve_compute_times(runs: list[RunConfig], store: ResultsStore, *, log=print) -> list[RunConfig]:
    """`runs` with every simulated run's missing compute times filled in from a stored or new profile."""
    from dglsim.study.execute import resolve_device

    resolved = []
    for cfg in runs:
        if cfg.method != "simulated" or cfg.compute_time is not None:
            resolved.append(cfg)
            continue
        key = _profile_key(cfg)
        seconds = store.get_profile(key)
        if seconds is None:
            net = build_network(cfg.network_spec(), seed=0).to(resolve_device(cfg.device))
            seconds = profile_modules(net, cfg.batch_size)
            store.put_profile(key, seconds, _profiled(cfg))
            log(f"profiled {cfg.arch} K={cfg.k} width {cfg.width} batch {cfg.batch_size} on {cfg.device}: "
                + ", ".join(f"{1e3 * t:.2f}" for t in seconds) + " ms per update")
        resolved.append(dataclasses.replace(cfg, compute_time=tuple(seconds)))
    return resolved
