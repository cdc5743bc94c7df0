"""Trace files, written chunk by chunk: a run of any length streams its rows to disk.

`trace_writer(path)` picks the format by the file's suffix:
- ``.csv``: a header of the Row fields, then one line per row (floats in repr, so they read
  back exactly: `Trace.from_csv`);
- ``.parquet``: Apache Parquet through pyarrow, one row group per chunk, the action as a
  dictionary-encoded string column; it opens in pandas, polars, DuckDB and Spark;
- ``.json``: Chrome-trace JSON (open in Perfetto or chrome://tracing): a track per worker, a
  complete event per update (start to finish), instant events for sends, forwards,
  evictions and blocking; times in microseconds;
- any other suffix: the row text form (`format_row`), one row per line.

A writer takes packed chunks (`dglsim.sim.rows.CHUNK_DTYPE`) with `write` and finishes the
file on `close`; it writes to PATH.partial and renames it to PATH on close, so an interrupted
run never leaves a truncated file under the name asked for.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np

from dglsim.errors import InvalidArgument
from dglsim.sim.rows import ACTIONS, CHUNK_DTYPE, COLUMNS, Row, chunk_rows, format_row

__all__ = ["WRITERS", "TraceWriter", "trace_writer"]

_INSTANT = {ACTIONS.index(a) for a in ("forward", "send", "evict", "block", "unblock")}
_START, _FINISH = ACTIONS.index("start"), ACTIONS.index("finish")


class TraceWriter:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.partial = self.path.with_name(self.path.name + ".partial")
        self.rows = 0

    def write(self, chunk: np.ndarray) -> None:
        self.rows += int(chunk.size)
        self._write(chunk)

    def _write(self, chunk: np.ndarray) -> None:
        raise NotImplementedError

    def _finish(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self._finish()
        os.replace(self.partial, self.path)

    def abort(self) -> None:
        """Close and drop the partial file (the run failed or was interrupted)."""
        try:
            self._finish()
        finally:
            self.partial.unlink(missing_ok=True)

    def __enter__(self) -> "TraceWriter":
        return self

    def __exit__(self, kind, value, tb) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()


class _Csv(TraceWriter):
    def __init__(self, path) -> None:
        super().__init__(path)
        self.file = open(self.partial, "w", newline="")
        self.csv = csv.writer(self.file)
        self.csv.writerow(COLUMNS)

    def _write(self, chunk):
        self.csv.writerows(chunk_rows(chunk))

    def _finish(self):
        self.file.close()


class _Text(TraceWriter):
    def __init__(self, path) -> None:
        super().__init__(path)
        self.file = open(self.partial, "w")

    def _write(self, chunk):
        self.file.writelines(format_row(Row(*r)) + "\n" for r in chunk_rows(chunk))

    def _finish(self):
        self.file.close()


class _Parquet(TraceWriter):
    def __init__(self, path) -> None:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise InvalidArgument(f"a .parquet trace needs pyarrow (pip install pyarrow), which cannot be imported: {exc}") from exc
        super().__init__(path)
        self.pa = pa
        self.actions = pa.array(ACTIONS)
        self.schema = pa.schema([(n, pa.dictionary(pa.int8(), pa.string()) if n == "action" else pa.from_numpy_dtype(t))
                                 for n, (t, _) in CHUNK_DTYPE.fields.items()])
        self.writer = pq.ParquetWriter(self.partial, self.schema, compression="zstd")

    def _write(self, chunk):
        pa = self.pa
        columns = [pa.DictionaryArray.from_arrays(pa.array(chunk["action"].astype(np.int8)), self.actions) if name == "action"
                   else pa.array(np.ascontiguousarray(chunk[name])) for name in COLUMNS]
        self.writer.write_table(pa.Table.from_arrays(columns, schema=self.schema))

    def _finish(self):
        self.writer.close()


class _Chrome(TraceWriter):
    """Events are streamed; the start of each worker's open update is carried across chunks."""

    def __init__(self, path, time_unit: float = 1e6) -> None:
        super().__init__(path)
        self.file = open(self.partial, "w")
        self.file.write('{"displayTimeUnit": "ms", "traceEvents": [')
        self.unit = time_unit
        self.first = True
        self.tracks: set[int] = set()
        self.open: dict[int, tuple] = {}

    def _event(self, event: dict) -> None:
        self.file.write(("" if self.first else ",\n") + json.dumps(event))
        self.first = False

    def _write(self, chunk):
        for t, w, action, item, version, stale, age, reuse, _occ, nbytes in chunk.tolist():
            if w not in self.tracks:
                self.tracks.add(w)
                self._event({"ph": "M", "name": "thread_name", "pid": 0, "tid": w, "args": {"name": f"worker {w}"}})
            if action == _START:
                self.open[w] = (t, item, stale, age, reuse)
            elif action == _FINISH and w in self.open:
                s_t, s_item, s_stale, s_age, s_reuse = self.open.pop(w)
                self._event({"ph": "X", "name": f"update {version}", "pid": 0, "tid": w, "ts": s_t * self.unit, "dur": (t - s_t) * self.unit,
                             "args": {"item": s_item, "staleness": s_stale, "age": s_age, "reuse": s_reuse}})
            elif action in _INSTANT:
                self._event({"ph": "i", "s": "t", "name": ACTIONS[action], "pid": 0, "tid": w, "ts": t * self.unit, "args": {"item": item, "bytes": nbytes}})

    def _finish(self):
        self.file.write("]}\n")
        self.file.close()


WRITERS = {"csv": _Csv, "parquet": _Parquet, "chrome": _Chrome, "text": _Text}
_BY_SUFFIX = {".csv": "csv", ".parquet": "parquet", ".json": "chrome"}


def trace_writer(path: str | Path, format: str | None = None) -> TraceWriter:
    """The chunked writer for `format` (csv, parquet, chrome, text), by default by `path`'s suffix."""
    format = format or _BY_SUFFIX.get(Path(path).suffix, "text")
    if format not in WRITERS:
        raise InvalidArgument(f"'format' of trace_writer must be one of {list(WRITERS)}, got {format!r}")
    return WRITERS[format](path)
