"""Metrics computed from a trace (the trace is the single source of truth).

makespan; per worker: updates, throughput, busy time, utilization, idle fraction; staleness,
age and reuse of consumed items (mean, max, quantiles); input occupancy over time
(time-weighted mean, max); bytes sent per link; evictions.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from dglsim.sim.trace import Trace

__all__ = ["summarize_trace", "distribution", "buffer_peak"]

QUANTILES = (0.5, 0.9, 0.99)


def distribution(values: np.ndarray) -> dict[str, float]:
    if values.size == 0:
        return {"count": 0}
    out = {"count": int(values.size), "mean": float(values.mean()), "max": float(values.max())}
    out.update({f"p{int(q * 100)}": float(np.quantile(values, q)) for q in QUANTILES})
    return out


def _time_weighted(times: np.ndarray, values: np.ndarray, end: float) -> float:
    """Time average over [0, end] of a step function that takes values[i] from times[i] on (0 before)."""
    if times.size == 0 or end <= 0:
        return 0.0
    widths = np.diff(np.append(times, end))
    return float((values * widths).sum() / end)


def summarize_trace(trace: Trace, workers: int) -> dict:
    rows = trace.to_array()
    makespan = float(rows["time"].max()) if rows.size else 0.0
    out: dict = {"makespan": makespan, "events": int(rows.size), "workers": []}
    for j in range(workers):
        mine = rows[rows["worker"] == j]
        starts = mine[mine["action"] == "start"]
        finishes = mine[mine["action"] == "finish"]
        n = finishes.size
        busy = float((finishes["time"] - starts["time"][:n]).sum())
        occupancy_rows = mine[np.isin(mine["action"], ("start", "arrive", "evict"))]
        out["workers"].append({
            "worker": j,
            "updates": int(n),
            "throughput": n / makespan if makespan > 0 else 0.0,
            "busy": busy,
            "utilization": busy / makespan if makespan > 0 else 0.0,
            "idle_fraction": 1 - busy / makespan if makespan > 0 else 0.0,
            "staleness": distribution(starts["staleness"].astype(float)),
            "age": distribution(starts["age"]),
            "reuse": distribution(starts["reuse"].astype(float)),
            "occupancy_mean": _time_weighted(occupancy_rows["time"], occupancy_rows["occupancy"].astype(float), makespan),
            "occupancy_max": int(occupancy_rows["occupancy"].max()) if occupancy_rows.size else 0,
            "bytes_sent": int(mine["bytes"][mine["action"] == "send"].sum()),
            "evictions": int((mine["action"] == "evict").sum()),
        })
    return out


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
