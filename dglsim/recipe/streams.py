"""The random streams of a run beyond the simulator's own (dglsim.sim.streams), each derived
from the run's seed with a salt of its own, so that no two streams coincide and each is the same
in every process that needs it (a simulated run and the real ranks encode alike)."""

from __future__ import annotations

import numpy as np

from dglsim.recipe.config import RunConfig

__all__ = ["codec_seeds", "inbox_rng", "injected_delay_rng", "item_id"]

_CODEC_SALT = 0x9A17  # the links' codecs
_INJECTED_DELAY_SALT = 0xD1  # the delay factors a real rank sleeps by
_INBOX_STRIDE = 7919  # a prime: rank r samples its replay buffer with seed + 7919 r
_ITEMS_PER_RANK = 10**9  # item ids: rank r's n-th output is r 10^9 + n, unique across ranks


def codec_seeds(cfg: RunConfig) -> list[int]:
    """One seed per link."""
    return np.random.SeedSequence([cfg.seed, _CODEC_SALT]).generate_state(cfg.k - 1).tolist()


def inbox_rng(cfg: RunConfig, rank: int) -> np.random.Generator:
    """A real rank's replay-buffer sampling."""
    return np.random.default_rng(cfg.seed + _INBOX_STRIDE * rank)


def injected_delay_rng(cfg: RunConfig, rank: int) -> np.random.Generator:
    return np.random.default_rng([cfg.seed, rank, _INJECTED_DELAY_SALT])


def item_id(rank: int, n: int) -> int:
    return rank * _ITEMS_PER_RANK + n
