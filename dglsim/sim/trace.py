"""The simulation trace: one row per event, as data.

Row fields: time (simulated s), worker, action, item id, producer version the item carries,
staleness (producer updates since it was produced), age (simulated s since it was produced),
reuse count, buffer occupancy (after the event), bytes.

Actions: "start" (worker begins an update on an item), "finish" (update on that item done;
version is the worker's new update count), "send" (output leaves on the link, with its bytes), "arrive" (item
enters the next worker's queue or buffer), "evict" (oldest item dropped from a full buffer),
"block"/"unblock" (sync producer waiting for queue space), "forward" (paper mode: a module
past its update budget passes an item on without updating).

Every row has a string form that round-trips (`format_row` / `parse_row`), the trace
validates itself (`validate`), and it exports to CSV and Chrome-trace JSON (Perfetto).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Iterable, NamedTuple

import numpy as np

from dglsim.errors import InvalidArgument

__all__ = ["Row", "ACTIONS", "Trace", "format_row", "parse_row", "TraceError"]

ACTIONS = ("start", "finish", "forward", "send", "arrive", "evict", "block", "unblock")


class Row(NamedTuple):
    time: float
    worker: int
    action: str
    item: int
    version: int
    staleness: int
    age: float
    reuse: int
    occupancy: int
    bytes: int


COLUMNS = Row._fields
_DTYPE = np.dtype([("time", "f8"), ("worker", "i4"), ("action", "U8"), ("item", "i8"), ("version", "i8"),
                   ("staleness", "i8"), ("age", "f8"), ("reuse", "i4"), ("occupancy", "i4"), ("bytes", "i8")])


class TraceError(InvalidArgument):
    """A trace breaks an invariant; the message shows the failing row in context."""


def format_row(row: Row) -> str:
    """Compact string form; floats in repr so the row parses back exactly."""
    return (f"{row.time!r} w{row.worker} {row.action} item={row.item} v={row.version} stale={row.staleness} "
            f"age={row.age!r} reuse={row.reuse} occ={row.occupancy} bytes={row.bytes}")


def parse_row(text: str) -> Row:
    try:
        time, worker, action, *fields = text.split()
        kv = dict(f.split("=", 1) for f in fields)
        row = Row(float(time), int(worker[1:]), action, int(kv["item"]), int(kv["v"]), int(kv["stale"]),
                  float(kv["age"]), int(kv["reuse"]), int(kv["occ"]), int(kv["bytes"]))
    except (ValueError, KeyError) as exc:
        raise InvalidArgument(f"trace row must look like '{format_row(Row(0.0, 0, 'start', 0, 0, 0, 0.0, 0, 0, 0))}', got {text!r}") from exc
    if row.action not in ACTIONS:
        raise InvalidArgument(f"trace row action must be one of {list(ACTIONS)}, got {row.action!r}")
    return row


class Trace:
    def __init__(self, rows: Iterable[tuple] = ()) -> None:
        self.rows: list[tuple] = list(rows)  # plain tuples in Row order: appending is the hot path

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return (Row(*r) for r in self.rows)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Trace) and self.rows == other.rows

    def to_array(self) -> np.ndarray:
        """A numpy structured array with the Row fields as columns."""
        return np.array(self.rows, dtype=_DTYPE) if self.rows else np.zeros(0, dtype=_DTYPE)

    def text(self) -> str:
        return "\n".join(format_row(Row(*r)) for r in self.rows) + ("\n" if self.rows else "")

    @classmethod
    def from_text(cls, text: str) -> "Trace":
        return cls(tuple(parse_row(line)) for line in text.splitlines() if line.strip())

    def to_csv(self, path: str | Path) -> None:
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(COLUMNS)
            writer.writerows(self.rows)

    @classmethod
    def from_csv(cls, path: str | Path) -> "Trace":
        """A trace written by `to_csv` (by the simulator or by real ranks, dglsim.ranks)."""
        types = [float, int, str, int, int, int, float, int, int, int]
        with open(path, newline="") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None or tuple(header) != COLUMNS:
                raise InvalidArgument(f"trace CSV {str(path)!r} must start with the header {','.join(COLUMNS)}, got {header!r}")
            return cls(tuple(t(v) for t, v in zip(types, row)) for row in reader)

    def to_chrome(self, path: str | Path, *, time_unit: float = 1e6) -> None:
        """Chrome-trace JSON: one track per worker, a complete event per update (start..finish),
        instant events for sends and evictions; times scaled to microseconds."""
        events = [{"ph": "M", "name": "thread_name", "pid": 0, "tid": w, "args": {"name": f"worker {w}"}}
                  for w in sorted({r[1] for r in self.rows})]
        open_starts: dict[int, tuple] = {}
        for r in self.rows:
            t, w, action = r[0], r[1], r[2]
            if action == "start":
                open_starts[w] = r
            elif action == "finish" and w in open_starts:
                s = open_starts.pop(w)
                events.append({"ph": "X", "name": f"update {r[4]}", "pid": 0, "tid": w, "ts": s[0] * time_unit,
                               "dur": (t - s[0]) * time_unit, "args": {"item": s[3], "staleness": s[5], "age": s[6], "reuse": s[7]}})
            elif action in ("forward", "send", "evict", "block", "unblock"):
                events.append({"ph": "i", "s": "t", "name": action, "pid": 0, "tid": w, "ts": t * time_unit, "args": {"item": r[3], "bytes": r[9]}})
        Path(path).write_text(json.dumps({"traceEvents": events, "displayTimeUnit": "ms"}))

    def validate(self, workers: int | None = None) -> None:
        """Raise TraceError unless: times never decrease; each worker alternates start/finish;
        a finish raises its worker's version by one; staleness, age, reuse and bytes are >= 0."""
        last_time = -np.inf
        busy: dict[int, bool] = {}
        version: dict[int, int] = {}
        for i, r in enumerate(self.rows):
            row = Row(*r)
            problem = None
            if row.action not in ACTIONS:
                problem = f"unknown action {row.action!r}"
            elif row.time < last_time:
                problem = f"time goes back from {last_time!r}"
            elif workers is not None and not 0 <= row.worker < workers:
                problem = f"worker outside [0, {workers})"
            elif min(row.staleness, row.reuse, row.bytes, row.occupancy) < 0 or row.age < 0:
                problem = "negative staleness, age, reuse, occupancy or bytes"
            elif row.action == "start" and busy.get(row.worker):
                problem = "start while the worker is busy"
            elif row.action == "finish" and not busy.get(row.worker):
                problem = "finish without a start"
            elif row.action == "finish" and row.version != version.get(row.worker, 0) + 1:
                problem = f"finish sets version {row.version}, expected {version.get(row.worker, 0) + 1}"
            if problem:
                context = "\n".join(("> " if j == i else "  ") + format_row(Row(*self.rows[j])) for j in range(max(0, i - 3), min(len(self.rows), i + 2)))
                raise TraceError(f"trace row {i}: {problem}\n{context}")
            last_time = row.time
            if row.action == "start":
                busy[row.worker] = True
            elif row.action == "finish":
                busy[row.worker] = False
                version[row.worker] = row.version
