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

One pass over a chunk's rows in order (`_fold`, compiled by numba where it imports, the same
function interpreted otherwise) updates every worker's state; the tables it counts into are
grown beforehand to the chunk's largest values. A row costs a few nanoseconds, whatever the
number of workers.
"""

from __future__ import annotations

import math

import numpy as np

from dglsim.sim.jit import jit
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


def _grown(table: np.ndarray, width: int) -> np.ndarray:
    """`table` with at least `width` columns (doubling, so growth is rare)."""
    if width <= table.shape[1]:
        return table
    grown = np.zeros((table.shape[0], max(width, 2 * table.shape[1])), table.dtype)
    grown[:, : table.shape[1]] = table
    return grown


def _distribution(counts: np.ndarray, total: float) -> dict[str, float]:
    """count, mean, max and quantiles of the multiset where value v occurs counts[v] times."""
    n = int(counts.sum())
    if n == 0:
        return {"count": 0}
    present = np.flatnonzero(counts)
    out = {"count": n, "mean": float(total) / n, "max": float(present[-1])}
    out.update({f"p{int(q * 100)}": _quantile_from_counts(present.astype(float), counts[present], q) for q in QUANTILES})
    return out


@jit
def _fold(time, worker, action, stale, age, reuse, occupancy, nbytes, keys, sketching, low,
          updates, busy, open_start, area, last_time, last_value, occupancy_max, bytes_sent, evictions,
          stale_table, stale_total, reuse_table, reuse_total, age_count, age_sum, age_max, zeros, buckets):
    """Every row of a chunk, in order, into its worker's state."""
    for i in range(time.shape[0]):
        w, a, t = worker[i], action[i], time[i]
        if a == START:
            open_start[w] = t
            stale_table[w, stale[i]] += 1
            stale_total[w] += stale[i]
            reuse_table[w, reuse[i]] += 1
            reuse_total[w] += reuse[i]
            g = age[i]
            age_count[w] += 1
            age_sum[w] += g
            if g > age_max[w]:
                age_max[w] = g
            if sketching:
                if g > 0:
                    buckets[w, keys[i] - low] += 1
                else:
                    zeros[w] += 1
        elif a == FINISH:
            updates[w] += 1
            busy[w] += t - open_start[w]  # starts and finishes alternate: this closes the open start
        elif a == SEND:
            bytes_sent[w] += nbytes[i]
        if a == START or a == ARRIVE or a == EVICT:  # the occupancy is a step function of these rows
            if last_time[w] == last_time[w]:  # not NaN: a step before this one
                area[w] += last_value[w] * (t - last_time[w])
            last_time[w] = t
            last_value[w] = occupancy[i]
            if occupancy[i] > occupancy_max[w]:
                occupancy_max[w] = occupancy[i]
        if a == EVICT:
            evictions[w] += 1


class TraceSummary:
    def __init__(self, workers: int) -> None:
        k = self.k = workers
        self.rows = 0
        self.makespan = 0.0
        self.exact_ages = True
        self.kept: list[tuple[np.ndarray, np.ndarray]] = []  # (workers, ages) of consumed items while exact
        self.held = 0
        self.low = 0  # the bucket index of the sketch's column 0
        self.updates, self.evictions, self.occupancy_max = (np.zeros(k, np.int64) for _ in range(3))
        self.busy, self.area, self.last_value, self.bytes_sent = (np.zeros(k) for _ in range(4))
        self.open_start, self.last_time = np.full(k, np.nan), np.full(k, np.nan)
        self.stale_table, self.reuse_table = np.zeros((k, 16), np.int64), np.zeros((k, 16), np.int64)
        self.stale_total, self.reuse_total = np.zeros(k), np.zeros(k)
        self.age_count, self.age_sum, self.age_max = np.zeros(k, np.int64), np.zeros(k), np.full(k, -math.inf)
        self.zeros, self.buckets = np.zeros(k, np.int64), np.zeros((k, 0), np.int64)

    def add(self, chunk: np.ndarray) -> None:
        """Fold in the next chunk of rows (in trace order). The chunk is not kept."""
        if chunk.size == 0:
            return
        self.rows += int(chunk.size)
        time, action, age = chunk["time"], chunk["action"], chunk["age"]
        self.makespan = max(self.makespan, float(time.max()))
        starts = action == START
        if starts.any():
            self.stale_table = _grown(self.stale_table, int(chunk["staleness"][starts].max()) + 1)
            self.reuse_table = _grown(self.reuse_table, int(chunk["reuse"][starts].max()) + 1)
        sketching = not self.exact_ages  # the fold counts this chunk's ages into the sketch
        if self.exact_ages:
            self.kept.append((chunk["worker"][starts].astype(np.int64), age[starts].copy()))
            self.held += int(starts.sum())
            if self.held > EXACT_AGES:
                self._to_sketch()  # counts the kept ages, this chunk's included
        keys = self._bucket_keys(age, starts & (age > 0)) if sketching else np.zeros(1, np.int64)
        _fold(time, chunk["worker"], action, chunk["staleness"], age, chunk["reuse"], chunk["occupancy"], chunk["bytes"], keys,
              sketching, self.low, self.updates, self.busy, self.open_start, self.area, self.last_time, self.last_value,
              self.occupancy_max, self.bytes_sent, self.evictions, self.stale_table, self.stale_total, self.reuse_table, self.reuse_total,
              self.age_count, self.age_sum, self.age_max, self.zeros, self.buckets)

    def _bucket_keys(self, ages: np.ndarray, positive: np.ndarray) -> np.ndarray:
        """DDSketch bucket index of each positive age (0 elsewhere), the table grown to hold them."""
        keys = np.zeros(ages.size, np.int64)
        keys[positive] = np.ceil(np.log(ages[positive]) / _LOG_GAMMA)
        if positive.any():
            low, high = int(keys[positive].min()), int(keys[positive].max())
            width = self.buckets.shape[1]
            if width == 0:
                self.low = low
            if low < self.low or high >= self.low + width:
                new_low, new_high = min(low, self.low), max(high + 1, self.low + width)
                grown = np.zeros((self.k, new_high - new_low), np.int64)
                grown[:, self.low - new_low : self.low - new_low + width] = self.buckets
                self.buckets, self.low = grown, new_low
        return keys

    def _to_sketch(self) -> None:
        """Past EXACT_AGES kept ages: count every kept age into the sketch and keep none."""
        self.exact_ages = False
        w = np.concatenate([p[0] for p in self.kept])
        ages = np.concatenate([p[1] for p in self.kept])
        self.kept, self.held = [], 0
        positive = ages > 0
        keys = self._bucket_keys(ages, positive)
        np.add.at(self.zeros, w[~positive], 1)
        np.add.at(self.buckets, (w[positive], keys[positive] - self.low), 1)

    def _age_distribution(self, j: int, exact: dict[int, np.ndarray]) -> dict[str, float]:
        n = int(self.age_count[j])
        if n == 0:
            return {"count": 0}
        out = {"count": n, "mean": float(self.age_sum[j]) / n, "max": float(self.age_max[j])}
        if self.exact_ages:
            out.update({f"p{int(q * 100)}": float(np.quantile(exact[j], q)) for q in QUANTILES})
            return out
        present = np.flatnonzero(self.buckets[j])
        values = np.concatenate([[0.0], 2 * _GAMMA ** (present + self.low).astype(float) / (_GAMMA + 1)])  # a bucket's value: within ALPHA of all it holds
        counts = np.concatenate([[self.zeros[j]], self.buckets[j][present]])
        keep = counts > 0
        out.update({f"p{int(q * 100)}": min(_quantile_from_counts(values[keep], counts[keep], q), float(self.age_max[j])) for q in QUANTILES})
        out["sketch_alpha"] = ALPHA
        return out

    def _exact_ages(self) -> dict[int, np.ndarray]:
        """Each worker's kept ages, in trace order."""
        if not self.kept:
            return {}
        w, ages = np.concatenate([p[0] for p in self.kept]), np.concatenate([p[1] for p in self.kept])
        order = np.argsort(w, kind="stable")
        w, ages = w[order], ages[order]
        edges = np.flatnonzero(w[1:] != w[:-1]) + 1
        return {int(w[a]): part for a, part in zip(np.concatenate([[0], edges]), np.split(ages, edges))}

    def result(self) -> dict:
        makespan = self.makespan
        exact = self._exact_ages() if self.exact_ages else {}
        share = (lambda x: x / makespan) if makespan > 0 else (lambda x: 0.0)
        workers = []
        for j in range(self.k):
            stepped = not np.isnan(self.last_time[j])
            area = float(self.area[j] + (self.last_value[j] * (makespan - self.last_time[j]) if stepped else 0.0))
            busy = float(self.busy[j])
            workers.append({
                "worker": j, "updates": int(self.updates[j]), "throughput": share(int(self.updates[j])), "busy": busy,
                "utilization": share(busy), "idle_fraction": 1 - busy / makespan if makespan > 0 else 0.0,
                "staleness": _distribution(self.stale_table[j], self.stale_total[j]), "age": self._age_distribution(j, exact),
                "reuse": _distribution(self.reuse_table[j], self.reuse_total[j]),
                "occupancy_mean": share(area) if stepped else 0.0, "occupancy_max": int(self.occupancy_max[j]),
                "bytes_sent": int(self.bytes_sent[j]), "evictions": int(self.evictions[j]),
            })
        return {"makespan": makespan, "events": self.rows, "workers": workers}
