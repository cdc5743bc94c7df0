"""A deterministic discrete-event core: a clock, an event heap and generator processes.

Events are ordered by (time, priority, sequence number): simultaneous events run by priority,
then in the order they were scheduled, so a seeded model gives the same event sequence on
every run. No torch, no global randomness.

Two ways to write a model:
- callbacks: `env.schedule(delay, fn, *args)` runs `fn(*args)` at `now + delay` (fastest);
- processes: `env.process(gen)` runs a generator that yields a delay (float, to wait that
  long) or a `Signal` (to wait until it fires); the value of a fired signal is sent back.
"""

from __future__ import annotations

import itertools
import math
from heapq import heappop, heappush
from typing import Any, Callable, Generator

from dglsim.errors import InvalidArgument

__all__ = ["Environment", "Signal", "URGENT", "NORMAL", "LATE"]

URGENT, NORMAL, LATE = 0, 1, 2


class Signal:
    """A one-shot event processes can wait on; `fire(value)` resumes all waiters (in wait order)."""

    __slots__ = ("env", "fired", "value", "_waiters")

    def __init__(self, env: "Environment") -> None:
        self.env, self.fired, self.value = env, False, None
        self._waiters: list[Generator] = []

    def fire(self, value: Any = None, *, priority: int = URGENT) -> None:
        if self.fired:
            raise InvalidArgument("a Signal fires once; this one has already fired")
        self.fired, self.value = True, value
        for gen in self._waiters:
            self.env.schedule(0.0, self.env._resume, gen, value, priority=priority)
        self._waiters.clear()


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

    def signal(self) -> Signal:
        return Signal(self)

    def process(self, gen: Generator) -> None:
        """Start a generator process now (after events already scheduled for now)."""
        self.schedule(0.0, self._resume, gen, None)

    def _resume(self, gen: Generator, value: Any) -> None:
        try:
            command = gen.send(value)
        except StopIteration:
            return
        if isinstance(command, Signal):
            if command.fired:
                self.schedule(0.0, self._resume, gen, command.value, priority=URGENT)
            else:
                command._waiters.append(gen)
        else:
            self.schedule(float(command), self._resume, gen, None)

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
