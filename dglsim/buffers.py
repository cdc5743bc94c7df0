"""Replay buffers between modules, their sampling policies, and the items they hold.

An item remembers its producer's version when it was produced (the producer's update count),
its birth time and how often it has been consumed. A buffer holds at most `capacity` items;
putting into a full buffer evicts the oldest (a producer never blocks). `take` picks an item
by the policy and counts the use; with `max_reuse`, an item used that many times leaves the
buffer.

Policies (the authors describe least_used; their code runs authors):
- "fifo":       the oldest item
- "newest":     the newest item
- "uniform":    an item drawn uniformly (needs the rng)
- "least_used": the least consumed item, ties broken by the newest ("least used, then freshest")
- "authors":    the rule of the authors' code as it runs (eugenium/DGL, buffer_experiments,
                `Buffer.get_sample`, 'priority_lifo'): least used, then freshest, except that
                once the ring of slots is full the slot at the write pointer, which holds the
                oldest item, wins whenever it is among the least used. Their code maps slots
                past the write pointer to negative indices with `>` where `>=` was meant, so
                the pointer's own slot keeps the largest index. The freshest-first rule they
                describe is "least_used".
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from dglsim.constraints import Constraint, int_at_least, one_of, optional, validate, validate_fields

__all__ = ["Item", "ReplayBuffer", "Policy", "POLICIES", "make_policy"]


class Item:
    __slots__ = ("id", "version", "birth", "reuse", "payload")

    def __init__(self, id: int, version: int, birth: float, payload: Any = None) -> None:
        self.id, self.version, self.birth, self.reuse, self.payload = id, version, birth, 0, payload

    def __repr__(self) -> str:
        return f"Item(id={self.id}, version={self.version}, birth={self.birth:g}, reuse={self.reuse})"


class Policy(ABC):
    name: str

    @abstractmethod
    def select(self, items: list[Item], rng: np.random.Generator | None, *, full: bool = False) -> int:
        """Index into `items` (oldest first, non-empty) of the item to consume; `full`: the
        buffer holds its capacity."""


class Fifo(Policy):
    name = "fifo"

    def select(self, items, rng, *, full=False):
        return 0


class Newest(Policy):
    name = "newest"

    def select(self, items, rng, *, full=False):
        return len(items) - 1


class Uniform(Policy):
    name = "uniform"

    def select(self, items, rng, *, full=False):
        return int(rng.integers(len(items)))


class LeastUsed(Policy):
    name = "least_used"

    def select(self, items, rng, *, full=False):
        best, best_reuse = 0, items[0].reuse
        for i in range(1, len(items)):  # later items are newer: '<=' keeps the freshest of a tie
            if items[i].reuse <= best_reuse:
                best, best_reuse = i, items[i].reuse
        return best


class Authors(Policy):
    name = "authors"

    def select(self, items, rng, *, full=False):
        fewest = min(item.reuse for item in items)
        if full and items[0].reuse == fewest:  # the write pointer's slot: the oldest item
            return 0
        return max(i for i, item in enumerate(items) if item.reuse == fewest)


POLICIES = {p.name: p for p in (Fifo(), Newest(), Uniform(), LeastUsed(), Authors())}


def make_policy(name: str) -> Policy:
    validate("make_policy", "policy", name, one_of(tuple(POLICIES)))
    return POLICIES[name]


class ReplayBuffer:
    CONSTRAINTS: ClassVar[dict[str, Constraint]] = {"capacity": int_at_least(1), "max_reuse": optional(int_at_least(1))}

    def __init__(self, capacity: int, policy: str | Policy = "least_used", *, max_reuse: int | None = None) -> None:
        self.capacity, self.max_reuse = capacity, max_reuse
        validate_fields(self, self.CONSTRAINTS)
        if isinstance(policy, str):
            validate("ReplayBuffer", "policy", policy, one_of(tuple(POLICIES)))
        self.policy = make_policy(policy) if isinstance(policy, str) else policy
        self.items: list[Item] = []  # oldest first

    def __len__(self) -> int:
        return len(self.items)

    def put(self, item: Item) -> Item | None:
        """Add `item`; returns the evicted oldest item when the buffer was full."""
        self.items.append(item)
        if len(self.items) > self.capacity:
            return self.items.pop(0)
        return None

    def take(self, rng: np.random.Generator | None = None) -> Item | None:
        """The item the policy picks (its reuse count incremented), or None when empty."""
        if not self.items:
            return None
        index = self.policy.select(self.items, rng, full=len(self.items) == self.capacity)
        item = self.items[index]
        item.reuse += 1
        if self.max_reuse is not None and item.reuse >= self.max_reuse:
            del self.items[index]
        return item

    def state(self) -> list[tuple[int, int, float, int]]:
        """(id, version, birth, reuse) of each held item, oldest first: comparable and saveable."""
        return [(i.id, i.version, i.birth, i.reuse) for i in self.items]
