"""Metrics computed from a trace (the trace is the single source of truth).

makespan; per worker: updates, throughput, busy time, utilization, idle fraction; staleness,
age and reuse of consumed items (mean, max, quantiles); input occupancy over time
(time-weighted mean, max); bytes sent per link; evictions. `summarize_trace` reads any trace
in chunks through the streaming summary, so one implementation serves a tuple trace, a
columnar one and a run that keeps no trace at all.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from dglsim.sim.summary import QUANTILES, TraceSummary
from dglsim.sim.trace import Trace

__all__ = ["summarize_trace", "distribution", "buffer_peak"]


def distribution(values: np.ndarray) -> dict[str, float]:
    if values.size == 0:
        return {"count": 0}
    out = {"count": int(values.size), "mean": float(values.mean()), "max": float(values.max())}
    out.update({f"p{int(q * 100)}": float(np.quantile(values, q)) for q in QUANTILES})
    return out


def summarize_trace(trace: Trace, workers: int) -> dict:
    """The metrics of a whole trace, by the streaming summary (`dglsim.sim.summary`) over its chunks."""
    summary = TraceSummary(workers)
    for chunk in trace.chunks():
        summary.add(chunk)
    return summary.result()


def buffer_peak(trace: Trace, worker: int, *, removes_on_start: bool, max_reuse: int | None,
                weigh: Callable[[set[int]], int]) -> int:
    """Largest weigh(ids held) over the run for the input queue or buffer of `worker`, replayed
    from its arrive/evict/start/forward rows. A queue (sync) gives an item up when it starts; a
    replay buffer when it is evicted or has been consumed (trained on or forwarded) max_reuse times."""
    held: set[int] = set()
    peak = 0
    for _time, w, action, item, _version, _stale, _age, reuse, _occ, _bytes in trace.rows:
        if w != worker:
            continue
        if action == "arrive":
            held.add(item)
            peak = max(peak, weigh(held))
        elif action == "evict" or (action in ("start", "forward") and (removes_on_start or (max_reuse is not None and reuse >= max_reuse))):
            held.discard(item)
    return peak
