"""A deterministic discrete-event core: a clock and an event heap of callbacks.

`env.schedule(delay, fn, *args)` runs `fn(*args)` at `now + delay`. Events are ordered by
(time, priority, sequence number): simultaneous events run by priority, then in the order they
were scheduled, so a seeded model gives the same event sequence on every run. No torch, no
global randomness. (Callbacks, not generator processes: one heap push per event is the
simulator's hot path; an independent process-based model lives in the SimPy reference tests.)
"""

from __future__ import annotations

import itertools
import math
from heapq import heappop, heappush
from typing import Any, Callable

from dglsim.errors import InvalidArgument

__all__ = ["Environment", "URGENT", "NORMAL", "LATE"]

URGENT, NORMAL, LATE = 0, 1, 2


class Environment:
    __slots__ = ("now", "_heap", "_next_seq", "processed")

    def __init__(self, start: float = 0.0) -> None:
        self.now = float(start)
        self._heap: list[tuple[float, int, int, Callable, tuple]] = []
        self._next_seq = itertools.count().__next__
        self.processed = 0  # events run so far

    def schedule(self, delay: float, fn: Callable, *args: Any, priority: int = NORMAL) -> None:
        """Run fn(*args) at now + delay."""
        # The hot path of every model: one comparison, one push.
        if not delay >= 0.0:  # also rejects NaN
            raise InvalidArgument(f"'delay' of Environment.schedule must be a real >= 0, got {delay!r}")
        heappush(self._heap, (self.now + delay, priority, self._next_seq(), fn, args))

    def schedule_at(self, time: float, fn: Callable, *args: Any, priority: int = NORMAL) -> None:
        """Run fn(*args) at absolute `time` (>= now); exact, with no now + (time - now) rounding."""
        if not time >= self.now:
            raise InvalidArgument(f"'time' of Environment.schedule_at must be >= now ({self.now!r}), got {time!r}")
        heappush(self._heap, (time, priority, self._next_seq(), fn, args))

    def peek(self) -> float:
        """Time of the next event (inf when none)."""
        return self._heap[0][0] if self._heap else math.inf

    def run(self, until: float = math.inf) -> None:
        """Run events in order until none are left or the next is later than `until`
        (then the clock stops at `until`)."""
        heap, n = self._heap, 0
        try:
            if until == math.inf:
                while heap:
                    self.now, _, _, fn, args = heappop(heap)
                    fn(*args)
                    n += 1
            else:
                while heap and heap[0][0] <= until:
                    self.now, _, _, fn, args = heappop(heap)
                    fn(*args)
                    n += 1
                self.now = max(self.now, until)
        finally:
            self.processed += n
