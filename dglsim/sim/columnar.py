"""A columnar trace: the rows of a run as numpy structured arrays in chunks.

A chunk holds rows in the packed dtype `dglsim.sim.rows.CHUNK_DTYPE` (61 bytes a row: the action
is its index in ACTIONS). A sealed chunk is kept compressed with Zstandard, level 1: a trace's
columns are sorted times, sequential ids and small counters, which compress about 4-6x, so a
million updates with their full trace fit in well under 150 MB, against about 1.2 GB as Python
tuples (zstandard: the reference Zstandard bindings, far faster than zlib at a better ratio).

`ColumnarTrace` is a `Trace`: `len`, iteration, `rows`, `to_array`, `text`, `validate`,
`to_csv` and `to_chrome` work as on the tuple trace (for small runs: `rows` builds the tuples).
`chunks()` yields the packed arrays one at a time, as on any trace: the writers
(`dglsim.sim.trace_io`) and the streaming summaries (`dglsim.sim.summary`) read them.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Iterable, Iterator

import numpy as np
import zstandard

from dglsim.sim.rows import ARRAY_DTYPE, CHUNK_DTYPE, chunk_rows, chunk_to_array
from dglsim.sim.trace import Trace

__all__ = ["ColumnarTrace"]

_LEVEL = 1
_COMPRESSOR: ThreadPoolExecutor | None = None  # one thread: zstd releases the GIL, so chunks compress while the kernel runs


def _compress_later(data) -> Future:
    global _COMPRESSOR
    if _COMPRESSOR is None:
        _COMPRESSOR = ThreadPoolExecutor(1, thread_name_prefix="dglsim-trace-zstd")
    return _COMPRESSOR.submit(zstandard.compress, data, _LEVEL)


class ColumnarTrace(Trace):
    def __init__(self, chunks: Iterable[np.ndarray] = (), *, compress: bool = True) -> None:
        self._compress = compress
        self._sealed: list[Future | bytes | np.ndarray] = []
        self._sizes: list[int] = []
        self._rows_cache: list[tuple] | None = None
        for chunk in chunks:
            self.append(chunk)

    def append(self, chunk: np.ndarray, *, copy: bool = True) -> Future | None:
        """Seal one packed chunk. With `copy` false the chunk is read later, by the compressing
        thread: the caller must not write to it until the returned future is done."""
        if chunk.dtype != CHUNK_DTYPE:
            raise TypeError(f"a ColumnarTrace chunk must have dtype CHUNK_DTYPE, got {chunk.dtype}")
        if chunk.size == 0:
            return None
        data = np.ascontiguousarray(chunk)
        sealed = (_compress_later(data.tobytes() if copy else data) if self._compress else data.copy())
        self._sealed.append(sealed)
        self._sizes.append(int(chunk.size))
        self._rows_cache = None
        return sealed if isinstance(sealed, Future) else None

    def _settled(self) -> list[bytes | np.ndarray]:
        """The sealed chunks, each compression finished."""
        self._sealed = [s.result() if isinstance(s, Future) else s for s in self._sealed]
        return self._sealed

    def chunks(self, size: int | None = None) -> Iterator[np.ndarray]:
        """The sealed chunks, as they were appended (`size` is the tuple trace's; ignored)."""
        for sealed in self._settled():
            yield np.frombuffer(zstandard.decompress(sealed), dtype=CHUNK_DTYPE) if isinstance(sealed, bytes) else sealed

    @property
    def nbytes(self) -> int:
        """Bytes the sealed chunks hold."""
        return sum(len(s) if isinstance(s, bytes) else s.nbytes for s in self._settled())

    def __len__(self) -> int:
        return sum(self._sizes)

    @property
    def rows(self) -> list[tuple]:  # the tuple form, built once, for the Trace API on small runs
        if self._rows_cache is None:
            self._rows_cache = [row for chunk in self.chunks() for row in chunk_rows(chunk)]
        return self._rows_cache

    def to_array(self) -> np.ndarray:
        parts = [chunk_to_array(c) for c in self.chunks()]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=ARRAY_DTYPE)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Trace) or len(self) != len(other):
            return False
        return bool(np.array_equal(np.concatenate(list(self.chunks()) or [np.zeros(0, CHUNK_DTYPE)]),
                                   np.concatenate(list(other.chunks()) or [np.zeros(0, CHUNK_DTYPE)])))

    __hash__ = None  # type: ignore[assignment]
