"""The rows of a trace: their fields, their text form, and their packed array form.

Row fields: time (simulated s), worker, action, item id, producer version the item carries,
staleness (producer updates since it was produced), age (simulated s since it was produced),
reuse count, buffer occupancy (after the event), bytes.

Two array forms: ARRAY_DTYPE (`Trace.to_array`: the action as its name, for analysis) and
CHUNK_DTYPE (the packed form chunks travel in: the action as its index in ACTIONS, 61 bytes a
row), with the conversions between rows, chunks and arrays.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from dglsim.errors import InvalidArgument

__all__ = ["Row", "ACTIONS", "COLUMNS", "ARRAY_DTYPE", "CHUNK_DTYPE", "CHUNK_ROWS", "action_code", "format_row", "parse_row",
           "rows_to_chunk", "chunk_to_array", "chunk_rows"]

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
ARRAY_DTYPE = np.dtype([("time", "f8"), ("worker", "i4"), ("action", "U8"), ("item", "i8"), ("version", "i8"),
                   ("staleness", "i8"), ("age", "f8"), ("reuse", "i4"), ("occupancy", "i4"), ("bytes", "i8")])


CHUNK_DTYPE = np.dtype([("time", "f8"), ("worker", "i4"), ("action", "u1"), ("item", "i8"), ("version", "i8"),
                        ("staleness", "i8"), ("age", "f8"), ("reuse", "i4"), ("occupancy", "i4"), ("bytes", "i8")])
CHUNK_ROWS = 1 << 16
_ACTION_NAMES = np.array(ACTIONS)


def action_code(name: str) -> int:
    return ACTIONS.index(name)


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


def rows_to_chunk(rows: list[tuple]) -> np.ndarray:
    """Tuple rows (Trace.rows) as a packed chunk."""
    out = np.zeros(len(rows), dtype=CHUNK_DTYPE)
    if rows:
        for name, values in zip(COLUMNS, zip(*rows)):
            out[name] = [ACTIONS.index(a) for a in values] if name == "action" else values
    return out


def chunk_to_array(chunk: np.ndarray) -> np.ndarray:
    """A packed chunk in ARRAY_DTYPE (the action as its name)."""
    out = np.empty(chunk.size, dtype=ARRAY_DTYPE)
    for name in COLUMNS:
        out[name] = _ACTION_NAMES[chunk["action"]] if name == "action" else chunk[name]
    return out


def chunk_rows(chunk: np.ndarray) -> list[tuple]:
    """A packed chunk as tuple rows of Python values (the Trace.rows form)."""
    names = _ACTION_NAMES.tolist()
    return [(r[0], r[1], names[r[2]], *r[3:]) for r in chunk.tolist()]
