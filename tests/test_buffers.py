"""Replay buffers against a trivial model after every step (hypothesis stateful testing)."""

from collections import deque

import numpy as np
import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from dglsim.buffers import POLICIES, Item, ReplayBuffer
from dglsim.errors import InvalidArgument


class BufferVersusModel(RuleBasedStateMachine):
    """The model: a Python list of [id, reuse] pairs, oldest first, with each policy written out
    in the most direct way, and the same rng seed for the uniform policy."""

    @initialize(policy=st.sampled_from(sorted(POLICIES)), capacity=st.integers(1, 6), max_reuse=st.none() | st.integers(1, 4))
    def setup(self, policy, capacity, max_reuse):
        self.policy, self.capacity, self.max_reuse = policy, capacity, max_reuse
        self.buffer = ReplayBuffer(capacity, policy, max_reuse=max_reuse)
        self.model: list[list[int]] = []
        self.rng_real, self.rng_model = np.random.default_rng(0), np.random.default_rng(0)
        self.next_id = 0

    @rule()
    def put(self):
        evicted = self.buffer.put(Item(self.next_id, 0, float(self.next_id)))
        self.model.append([self.next_id, 0])
        expected = self.model.pop(0) if len(self.model) > self.capacity else None
        assert (evicted.id if evicted else None) == (expected[0] if expected else None)
        self.next_id += 1

    @rule()
    def take(self):
        got = self.buffer.take(self.rng_real)
        if not self.model:
            assert got is None
            return
        if self.policy == "fifo":
            index = 0
        elif self.policy == "newest":
            index = len(self.model) - 1
        elif self.policy == "uniform":
            index = int(self.rng_model.integers(len(self.model)))
        else:
            least = min(r for _, r in self.model)
            index = max(i for i, (_, r) in enumerate(self.model) if r == least)
            if self.policy == "authors" and len(self.model) == self.capacity and self.model[0][1] == least:
                index = 0  # the write pointer's slot of a full ring
        self.model[index][1] += 1
        expected = self.model[index]
        if self.max_reuse is not None and expected[1] >= self.max_reuse:
            self.model.pop(index)
        assert (got.id, got.reuse) == tuple(expected)

    @invariant()
    def same_contents(self):
        if hasattr(self, "buffer"):
            assert [(i, r) for i, _, _, r in self.buffer.state()] == [tuple(x) for x in self.model]
            assert len(self.buffer) <= self.capacity


TestBufferVersusModel = BufferVersusModel.TestCase


def test_fifo_with_single_use_is_a_bounded_deque():
    buffer, model = ReplayBuffer(3, "fifo", max_reuse=1), deque(maxlen=3)
    for i in range(10):
        buffer.put(Item(i, 0, 0.0))
        model.append(i)
        if i % 3 == 2:
            assert buffer.take().id == model.popleft()
    assert [s[0] for s in buffer.state()] == list(model)


@pytest.mark.parametrize(("kwargs", "match"), [
    (dict(capacity=0), "'capacity' of ReplayBuffer must be an int >= 1, got 0"),
    (dict(capacity=2, max_reuse=0), "'max_reuse' of ReplayBuffer must be None or an int >= 1, got 0"),
    (dict(capacity=2, policy="lifo"), "'policy' of ReplayBuffer must be one of"),
])
def test_bad_buffers_are_rejected(kwargs, match):
    with pytest.raises(InvalidArgument, match=match):
        ReplayBuffer(**kwargs)


class AuthorsRing:
    """The authors' buffer as their code runs it (eugenium/DGL, buffer_experiments/cifar_buffer.py,
    `Buffer.add_sample` / `get_sample` with 'priority_lifo'), transliterated: a ring of slots, a
    write pointer, use counts set to 1 on write, and their index arithmetic with its `>`."""

    def __init__(self, size):
        self.size, self.counter, self.filled = size, 0, False
        self.slots, self.hist = [None] * size, np.zeros(size)

    def add(self, item_id):
        self.slots[self.counter], self.hist[self.counter] = item_id, 1
        self.counter = (self.counter + 1) % self.size
        self.filled = self.filled or self.counter == 0

    def get(self):
        nmax = self.size if self.filled else self.counter
        if self.size == 1:
            return self.slots[0]
        use = self.hist[:nmax]  # a view, as their torch slice: the count below lands in hist
        eligible = np.where(use == use.min())[0]
        eligible[eligible > self.counter] -= nmax
        chosen = eligible.max()
        use[chosen] += 1
        return self.slots[chosen]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8])
def test_the_authors_policy_consumes_what_their_ring_buffer_returns(size):
    rng = np.random.default_rng(size)
    for trial in range(30):
        ring, buffer = AuthorsRing(size), ReplayBuffer(size, "authors")
        next_id = 0
        for op in rng.random(60) < 0.45:
            if op or next_id == 0:
                ring.add(next_id)
                buffer.put(Item(next_id, 0, float(next_id)))
                next_id += 1
            else:
                assert buffer.take().id == ring.get(), f"trial {trial}"


def test_least_used_is_not_the_authors_rule():
    """Negative control of the test above: the freshest-first rule disagrees with their ring
    once it is full and its oldest slot is among the least used."""
    ring, buffer = AuthorsRing(3), ReplayBuffer(3, "least_used")
    for i in range(4):
        ring.add(i)
        buffer.put(Item(i, 0, float(i)))
    assert ring.get() == 1 and buffer.take().id == 3  # their oldest slot wins; least_used takes the newest
