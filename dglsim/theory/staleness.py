"""Staleness for the asynchronous extension: its statistics from a run, and the bound on it
that the buffer and delay settings imply (proofs/05_async.md).

Async mode, producer j-1, consumer j, a replay buffer of capacity M that evicts its oldest item
and gives items up only by eviction (no reuse cap: with max_reuse, consumed items leave and an
old item can linger, so no bound holds), a link whose delay (latency, in-order delivery, no bandwidth limit) is at most l_max, and a
producer that takes at least c_min per update. An item consumed with staleness s has s newer
items behind it. Those that have arrived number at most M - 1 (with M newer items in the buffer
it would have been evicted); the others are on the link, sent within the last l_max, hence at
most floor(l_max / c_min) + 1 of them. So s <= M + floor(l_max / c_min).
"""

from __future__ import annotations

import math

import numpy as np

from dglsim.errors import InvalidArgument
from dglsim.sim.metrics import distribution

__all__ = ["staleness_stats", "async_staleness_bound"]


def staleness_stats(staleness) -> dict[str, float]:
    """tau_avg, tau_max and quantiles of the staleness of consumed items."""
    stats = distribution(np.asarray(staleness, dtype=float))
    if stats["count"] == 0:
        return {"count": 0}
    return {"count": stats["count"], "tau_avg": stats["mean"], "tau_max": stats["max"], **{k: v for k, v in stats.items() if k.startswith("p")}}


def async_staleness_bound(capacity: int, max_link_delay: float, min_producer_time: float) -> int:
    """The largest staleness a consumed item can have (see the module docstring)."""
    if not isinstance(capacity, int) or capacity < 1:
        raise InvalidArgument(f"'capacity' of async_staleness_bound must be an int >= 1, got {capacity!r}")
    if not (max_link_delay >= 0 and math.isfinite(max_link_delay)):
        raise InvalidArgument(f"'max_link_delay' of async_staleness_bound must be a finite real >= 0, got {max_link_delay!r}")
    if not min_producer_time > 0:
        raise InvalidArgument(f"'min_producer_time' of async_staleness_bound must be > 0 (an update takes time), got {min_producer_time!r}")
    return capacity + math.floor(max_link_delay / min_producer_time)
