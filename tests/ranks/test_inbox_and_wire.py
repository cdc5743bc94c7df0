"""A rank's inbox and its quantized link, without processes: a producer's error reaches the
consumer at once, even through a full queue, and a lost codebook is named, not decoded as None."""

import time
from pathlib import Path

import pytest
import torch

from dglsim.quant import Codec, QuantConfig
from dglsim.quant.vq import VQConfig
from dglsim.ranks import wire
from dglsim.ranks.wire import DATA, EncodedLink, Message
from dglsim.ranks.worker import RankOptions, _Inbox
from dglsim.recipe.config import RunConfig


class BrokenProducer:
    """A link that delivers `n` items, then fails as a dead producer's connection does."""

    def __init__(self, n: int) -> None:
        self.n, self.sent = n, 0

    def receive(self, src: int, timeout_s: float, *, me: int) -> Message:
        if self.sent == self.n:
            raise RuntimeError("rank 0's connection broke")
        self.sent += 1
        return Message(DATA, self.sent, self.sent, 0.0, torch.zeros(1), torch.zeros(1, dtype=torch.int64))


def test_a_producer_error_behind_a_full_sync_queue_reaches_the_consumer_at_once(tmp_path):
    """Queue of 1, three items sent, then the error: the consumer gets the items in order and
    then the producer's error, long before the 30 s timeout (which it used to wait out)."""
    cfg = RunConfig(method="distributed", pipeline="sync", k=2)
    inbox = _Inbox(cfg, BrokenProducer(3), RankOptions(out=Path(tmp_path), in_flight=1, timeout_s=30.0), 1, time.monotonic, lambda *r: None)
    started = time.monotonic()
    items = []
    for _ in range(3):  # pauses: the receiver refills the queue each time; after item 3 it fails with the queue full
        time.sleep(0.2)
        items.append(inbox.take().msg.item)
    assert items == [1, 2, 3]
    with pytest.raises(RuntimeError, match="rank 0's connection broke"):
        inbox.take()
    assert time.monotonic() - started < 5


def test_an_item_naming_a_codebook_never_received_is_an_error_naming_it(monkeypatch):
    """The first VQ item carries its codebook; a consumer that never got it must not decode
    the second against None."""
    codec = Codec(QuantConfig(family="vq", vq=VQConfig(codes=4), codebook_every=10), seed=0)
    producer = EncodedLink(codec)
    x, y = torch.randn(8, 2, 4, 4), torch.zeros(8, dtype=torch.int64)
    first = producer.pack(DATA, 1, 1, 0.0, x, y)
    second = producer.pack(DATA, 2, 2, 0.0, x, y)
    assert len(first[1]) > len(second[1])  # the first carries the codebook, the second does not

    wires = iter(second)  # the first item is lost on the way

    def deliver(buffer, src, timeout_s, *, me):
        buffer.copy_(next(wires)[: buffer.numel()])

    monkeypatch.setattr(wire, "recv", deliver)
    with pytest.raises(RuntimeError, match=r"rank 1: item 2 from rank 0 names codebook version \d+, which rank 0 never sent \(received: none\)"):
        EncodedLink(codec).receive(0, 1.0, me=1)

    wires = iter(first + second)  # both arrive: the second decodes with the first's codebook
    consumer = EncodedLink(codec)
    consumer.receive(0, 1.0, me=1)
    assert consumer.receive(0, 1.0, me=1).x.codebook is not None


def test_a_rank_rebuilds_residual_delta_codebooks_from_the_wire_alone(monkeypatch):
    """Residual VQ with bit-packed codes and int8 codebook deltas over the real wire format: the
    consumer's codebooks, rebuilt from the messages it received, are the producer's exactly, and
    every item decodes to what the producer's codec decodes."""
    cfg = QuantConfig(family="vq", vq=VQConfig(codes=8, stages=2, init="kmeans++", lloyd_iters=2), codebook_every=2,
                      code_format="packed", codebook_update="delta")
    producer = EncodedLink(Codec(cfg, seed=0))
    g = torch.Generator().manual_seed(0)
    y = torch.zeros(8, dtype=torch.int64)
    sent = [producer.pack(DATA, i, i, 0.0, torch.randn(8, 4, 4, 4, generator=g) + 0.3 * i, y) for i in range(7)]
    wires = iter([t for message in sent for t in message])

    def deliver(buffer, src, timeout_s, *, me):
        buffer.copy_(next(wires)[: buffer.numel()])

    monkeypatch.setattr(wire, "recv", deliver)
    consumer = EncodedLink(Codec(cfg, seed=1))  # its own codec's learner is never used to decode
    reference = Codec(cfg, seed=0)
    g = torch.Generator().manual_seed(0)
    for i in range(7):
        item = consumer.receive(0, 1.0, me=1).x
        mine = reference.encode(torch.randn(8, 4, 4, 4, generator=g) + 0.3 * i)
        assert item.version == mine.version and torch.equal(item.codebook, mine.codebook)
        assert torch.equal(consumer.decode(item), reference.decode(mine))
