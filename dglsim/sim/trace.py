"""The simulation trace: one row per event, as data (the rows: `dglsim.sim.rows`).

Actions: "start" (worker begins an update on an item), "finish" (update on that item done;
version is the worker's new update count), "send" (output leaves on the link, with its bytes), "arrive" (item
enters the next worker's queue or buffer), "evict" (oldest item dropped from a full buffer),
"block"/"unblock" (sync producer waiting for queue space), "forward" (paper mode: a module
past its update budget passes an item on without updating).

Every row has a string form that round-trips (`format_row` / `parse_row`), the trace
validates itself (`validate`), and it exports to CSV and Chrome-trace JSON (Perfetto) through
the chunked writers of `dglsim.sim.trace_io`. This `Trace` holds its rows as Python tuples,
what the Python engine appends to; `dglsim.sim.columnar.ColumnarTrace` holds packed chunks,
and both give `chunks()`, the form summaries and writers read.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from dglsim.errors import InvalidArgument
from dglsim.sim.rows import ACTIONS, ARRAY_DTYPE, CHUNK_ROWS, COLUMNS, Row, format_row, parse_row, rows_to_chunk
from dglsim.sim.trace_io import trace_writer

__all__ = ["Row", "ACTIONS", "Trace", "format_row", "parse_row", "TraceError"]

class TraceError(InvalidArgument):
    """A trace breaks an invariant; the message shows the failing row in context."""


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
        return np.array(self.rows, dtype=ARRAY_DTYPE) if self.rows else np.zeros(0, dtype=ARRAY_DTYPE)

    def chunks(self, size: int = CHUNK_ROWS) -> Iterator[np.ndarray]:
        """The rows as packed chunks (`dglsim.sim.rows.CHUNK_DTYPE`) of up to `size` rows."""
        for start in range(0, len(self.rows), size):
            yield rows_to_chunk(self.rows[start : start + size])

    def write(self, path: str | Path, format: str | None = None) -> None:
        """Write the trace in `format` (csv, parquet, chrome, text; default: by the suffix)."""
        with trace_writer(path, format) as writer:
            for chunk in self.chunks():
                writer.write(chunk)

    def text(self) -> str:
        return "\n".join(format_row(Row(*r)) for r in self.rows) + ("\n" if self.rows else "")

    @classmethod
    def from_text(cls, text: str) -> "Trace":
        return cls(tuple(parse_row(line)) for line in text.splitlines() if line.strip())

    def to_csv(self, path: str | Path) -> None:
        self.write(path, "csv")

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

    def to_chrome(self, path: str | Path) -> None:
        """Chrome-trace JSON: one track per worker, a complete event per update (start..finish),
        instant events for sends and evictions; times in microseconds."""
        self.write(path, "chrome")

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
