"""Streaming summaries of a trace: one pass over its chunks, in bounded memory.

`TraceSummary(workers)` takes packed chunks (`dglsim.sim.columnar`) in order with `add` and
gives the metrics of `dglsim.sim.metrics.summarize_trace` with `result()`: makespan; per
worker updates, busy time, utilization, staleness, age and reuse of consumed items (count,
mean, max, p50/p90/p99), time-weighted and peak input occupancy, bytes sent, evictions.

What it holds, whatever the run's length:
- staleness and reuse are integers: a histogram of their values (a bincount per worker), from
  which the quantiles are exact (numpy's default, linear interpolation between order statistics);
- ages are reals: kept exactly while the run has consumed at most EXACT_AGES of them in all
  (then the quantiles are numpy's, exactly); past that, every worker's ages move into a
  log-bucketed sketch with relative accuracy ALPHA (DDSketch: Masson, Rim and Lee, "DDSketch: a
  fast and fully-mergeable quantile sketch with relative-error guarantees", VLDB 2019): each
  quantile is then within a factor 1 +- ALPHA of an order statistic adjacent to it. Count,
  mean and max stay exact;
- the open update of each worker (a start without its finish yet) and the last occupancy step.
"""

from __future__ import annotations

import math

import numpy as np

from dglsim.sim.rows import action_code

__all__ = ["TraceSummary", "EXACT_AGES", "ALPHA"]

EXACT_AGES = 1 << 21  # 16 MiB of float64 ages, over all workers
ALPHA = 0.005
_GAMMA = (1 + ALPHA) / (1 - ALPHA)
_LOG_GAMMA = math.log(_GAMMA)
QUANTILES = (0.5, 0.9, 0.99)
START, FINISH, SEND, ARRIVE, EVICT = (action_code(a) for a in ("start", "finish", "send", "arrive", "evict"))


def _quantile_from_counts(values: np.ndarray, counts: np.ndarray, q: float) -> float:
    """numpy.quantile's default (linear) on the multiset where values[i] occurs counts[i] times."""
    n = int(counts.sum())
    position = (n - 1) * q
    low = math.floor(position)
    cumulative = np.cumsum(counts)
    a = float(values[np.searchsorted(cumulative, low, side="right")])  # the low-th smallest (0-based)
    b = float(values[np.searchsorted(cumulative, min(low + 1, n - 1), side="right")])
    t = position - low
    return b - (b - a) * (1 - t) if t >= 0.5 else a + (b - a) * t  # numpy's lerp, to the last bit


class _Histogram:
    """Counts of small non-negative integers (staleness, reuse), grown as values appear."""

    def __init__(self) -> None:
        self.counts = np.zeros(16, np.int64)
        self.total = 0  # sum of values (exact in int64)

    def add(self, values: np.ndarray) -> None:
        if values.size == 0:
            return
        counts = np.bincount(values)
        if counts.size > self.counts.size:
            self.counts = np.concatenate([self.counts, np.zeros(counts.size - self.counts.size, np.int64)])
        self.counts[: counts.size] += counts
        self.total += int(values.sum())

    def distribution(self) -> dict[str, float]:
        n = int(self.counts.sum())
        if n == 0:
            return {"count": 0}
        present = np.flatnonzero(self.counts)
        values, counts = present.astype(float), self.counts[present]
        out = {"count": n, "mean": self.total / n, "max": float(present[-1])}
        out.update({f"p{int(q * 100)}": _quantile_from_counts(values, counts, q) for q in QUANTILES})
        return out


class _Ages:
    """Ages of consumed items: exact values, or a DDSketch once the summary switches."""

    def __init__(self) -> None:
        self.parts: list[np.ndarray] | None = []
        self.buckets: dict[int, int] = {}
        self.zeros = 0
        self.count, self.sum, self.max = 0, 0.0, -math.inf

    def add(self, values: np.ndarray) -> None:
        if values.size == 0:
            return
        self.count += int(values.size)
        self.sum += float(values.sum())
        self.max = max(self.max, float(values.max()))
        if self.parts is not None:
            self.parts.append(values.copy())
        else:
            self._sketch(values)

    def to_sketch(self) -> None:
        if self.parts is not None:
            parts, self.parts = self.parts, None
            for values in parts:
                self._sketch(values)

    def _sketch(self, values: np.ndarray) -> None:
        positive = values[values > 0]
        self.zeros += int(values.size - positive.size)
        keys, counts = np.unique(np.ceil(np.log(positive) / _LOG_GAMMA).astype(np.int64), return_counts=True)
        for key, c in zip(keys.tolist(), counts.tolist()):
            self.buckets[key] = self.buckets.get(key, 0) + c

    def held(self) -> int:
        return sum(p.size for p in self.parts) if self.parts is not None else 0

    def distribution(self) -> dict[str, float]:
        if self.count == 0:
            return {"count": 0}
        out = {"count": self.count, "mean": self.sum / self.count, "max": self.max}
        if self.parts is not None:
            values = np.concatenate(self.parts)
            out.update({f"p{int(q * 100)}": float(np.quantile(values, q)) for q in QUANTILES})
            return out
        keys = np.array(sorted(self.buckets))
        values = np.concatenate([[0.0], 2 * _GAMMA ** keys.astype(float) / (_GAMMA + 1)])  # a bucket's value: within ALPHA of all it holds
        counts = np.concatenate([[self.zeros], [self.buckets[k] for k in keys.tolist()]])
        keep = counts > 0
        out.update({f"p{int(q * 100)}": min(_quantile_from_counts(values[keep], counts[keep], q), self.max) for q in QUANTILES})
        out["sketch_alpha"] = ALPHA
        return out


class _Worker:
    def __init__(self) -> None:
        self.updates = 0
        self.busy = 0.0
        self.open_start: float | None = None
        self.staleness, self.reuse, self.age = _Histogram(), _Histogram(), _Ages()
        self.occupancy_area = 0.0
        self.last_occupancy: tuple[float, float] | None = None  # (time, value) of the last step
        self.occupancy_max = 0
        self.bytes_sent = 0
        self.evictions = 0

    def add(self, rows: np.ndarray) -> None:
        action = rows["action"]
        starts, finishes = rows[action == START], rows[action == FINISH]
        start_times = starts["time"]
        if self.open_start is not None:
            start_times = np.concatenate([[self.open_start], start_times])
        n = finishes.size
        self.busy += float((finishes["time"] - start_times[:n]).sum())
        self.open_start = float(start_times[n]) if start_times.size > n else None
        self.updates += n
        self.staleness.add(starts["staleness"])
        self.reuse.add(starts["reuse"].astype(np.int64))
        self.age.add(starts["age"])
        steps = rows[(action == START) | (action == ARRIVE) | (action == EVICT)]
        if steps.size:
            times, values = steps["time"], steps["occupancy"].astype(float)
            if self.last_occupancy is not None:
                times, values = np.concatenate([[self.last_occupancy[0]], times]), np.concatenate([[self.last_occupancy[1]], values])
            self.occupancy_area += float((values[:-1] * np.diff(times)).sum())
            self.last_occupancy = (float(times[-1]), float(values[-1]))
            self.occupancy_max = max(self.occupancy_max, int(steps["occupancy"].max()))
        self.bytes_sent += int(rows["bytes"][action == SEND].sum())
        self.evictions += int((action == EVICT).sum())

    def result(self, j: int, makespan: float) -> dict:
        area = self.occupancy_area
        if self.last_occupancy is not None:
            area += self.last_occupancy[1] * (makespan - self.last_occupancy[0])
        share = (lambda x: x / makespan) if makespan > 0 else (lambda x: 0.0)
        return {
            "worker": j, "updates": self.updates, "throughput": share(self.updates), "busy": self.busy,
            "utilization": share(self.busy), "idle_fraction": 1 - self.busy / makespan if makespan > 0 else 0.0,
            "staleness": self.staleness.distribution(), "age": self.age.distribution(), "reuse": self.reuse.distribution(),
            "occupancy_mean": share(area) if self.last_occupancy is not None else 0.0, "occupancy_max": self.occupancy_max,
            "bytes_sent": self.bytes_sent, "evictions": self.evictions,
        }


class TraceSummary:
    def __init__(self, workers: int) -> None:
        self.workers = [_Worker() for _ in range(workers)]
        self.rows = 0
        self.makespan = 0.0
        self.exact_ages = True

    def add(self, chunk: np.ndarray) -> None:
        """Fold in the next chunk of rows (in trace order). The chunk is not kept."""
        if chunk.size == 0:
            return
        self.rows += int(chunk.size)
        self.makespan = max(self.makespan, float(chunk["time"].max()))
        worker = chunk["worker"]
        order = np.argsort(worker, kind="stable")  # one pass to split the chunk by worker, rows kept in order
        bounds = np.searchsorted(worker[order], np.arange(len(self.workers) + 1))
        for j, w in enumerate(self.workers):
            if bounds[j + 1] > bounds[j]:
                w.add(chunk[order[bounds[j] : bounds[j + 1]]])
        if self.exact_ages and sum(w.age.held() for w in self.workers) > EXACT_AGES:
            self.exact_ages = False
            for w in self.workers:
                w.age.to_sketch()

    def result(self) -> dict:
        return {"makespan": self.makespan, "events": self.rows, "workers": [w.result(j, self.makespan) for j, w in enumerate(self.workers)]}
