"""Items on the wire between rank j and rank j+1.

Float links (`Layout`): one fixed-size uint8 message per item, a header of four float64 (kind,
item id, producer version, birth time), then the activation (float32, the producer's output
shape) and the labels (int64). One message per item keeps matching trivial (gloo delivers
point-to-point messages between two ranks in order) and costs one copy to pack; the
receiver's fields are views into the received buffer.

Quantized links (`EncodedLink`, dglsim.quant): the encoded item's size depends on whether it
carries a codebook, so each item is a fixed header (the four fields and the payload's length)
followed by the payload: the codes (or scalar grid), the codebook message when there is one, and
the labels. The payload never repeats a codebook the consumer already has: the consumer keeps
the codebooks it was sent, by version, as the simulator's accounting assumes.

A "stop" message tells the consumer that its producer has sent its last item.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from dglsim.errors import InvalidArgument
from dglsim.quant import Codec, Encoded

__all__ = ["Layout", "EncodedLink", "Message", "DATA", "STOP", "PeerTimeout", "silent_producer", "silent_consumer", "send", "recv", "wait_sent"]

DATA, STOP = 0.0, 1.0
_HEADER = 4 * 8  # four float64


class PeerTimeout(RuntimeError):
    """A peer rank sent or took nothing within the timeout: it crashed or stopped answering."""

    def __init__(self, message: str, peer: int) -> None:
        super().__init__(message)
        self.peer = peer  # the rank blamed


@dataclass(frozen=True)
class Message:
    kind: float
    item: int
    version: int
    birth: float
    x: torch.Tensor | Encoded
    y: torch.Tensor


@dataclass(frozen=True)
class Layout:
    """The fixed message of one link: activations of `shape` (with the batch) and `batch` labels."""

    shape: tuple[int, ...]

    @property
    def activation_bytes(self) -> int:
        return math.prod(self.shape) * 4

    @property
    def label_bytes(self) -> int:
        return self.shape[0] * 8

    @property
    def nbytes(self) -> int:
        return _HEADER + self.activation_bytes + self.label_bytes

    def pack(self, kind: float, item: int, version: int, birth: float, x: torch.Tensor | None, y: torch.Tensor | None) -> list[torch.Tensor]:
        if kind == STOP:
            x, y = torch.zeros(self.shape), torch.zeros(self.shape[0], dtype=torch.int64)
        if tuple(x.shape) != self.shape:
            raise InvalidArgument(f"'x' of Layout.pack must have the link's shape {self.shape}, got {tuple(x.shape)}")
        header = torch.tensor([kind, float(item), float(version), birth], dtype=torch.float64)
        return [torch.cat([header.view(torch.uint8), x.detach().float().contiguous().view(-1).view(torch.uint8), y.to(torch.int64).contiguous().view(torch.uint8)])]

    def receive(self, src: int, timeout_s: float, *, me: int) -> Message:
        buf = self.empty()
        recv(buf, src, timeout_s, me=me)
        return self.unpack(buf)

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def unpack(self, buffer: torch.Tensor) -> Message:
        header = buffer[:_HEADER].view(torch.float64).tolist()
        a = _HEADER + self.activation_bytes
        x = buffer[_HEADER:a].view(torch.float32).view(self.shape)
        y = buffer[a:].view(torch.int64)
        return Message(header[0], int(header[1]), int(header[2]), header[3], x, y)

    def empty(self) -> torch.Tensor:
        return torch.empty(self.nbytes, dtype=torch.uint8)


class EncodedLink:
    """A quantized link: the producer's codec encodes, the consumer decodes with the codebook
    version each item names (kept from the item that carried it)."""

    def __init__(self, codec: Codec) -> None:
        self.codec = codec
        self.books: dict[int, torch.Tensor] = {}  # consumer: codebooks received, by version

    def pack(self, kind: float, item: int, version: int, birth: float, x: torch.Tensor | None, y: torch.Tensor | None) -> list[torch.Tensor]:
        """[header, payload]; the producer's codec encodes (and learns from) x."""
        payload = b""
        if kind == DATA:
            enc = self.codec.encode(x)
            buf = io.BytesIO()
            torch.save((enc.family, enc.shape, enc.parts, enc.version, enc.message, y.to(torch.int64)), buf)
            payload = buf.getvalue()
        header = torch.tensor([kind, float(item), float(version), birth, float(len(payload))], dtype=torch.float64).view(torch.uint8)
        return [header, torch.frombuffer(bytearray(payload), dtype=torch.uint8)] if payload else [header]

    def receive(self, src: int, timeout_s: float, *, me: int) -> Message:
        header = torch.empty(5 * 8, dtype=torch.uint8)
        recv(header, src, timeout_s, me=me)
        kind, item, version, birth, size = header.view(torch.float64).tolist()
        if kind == STOP:
            return Message(kind, int(item), int(version), birth, torch.zeros(0), torch.zeros(0))
        payload = torch.empty(int(size), dtype=torch.uint8)
        recv(payload, src, timeout_s, me=me)
        family, shape, parts, book_version, message, y = torch.load(io.BytesIO(payload.numpy().tobytes()), weights_only=True)
        if message is not None:  # items are encoded in order: none names an older codebook than the last one sent
            last = self.books[max(self.books)] if self.books else None
            self.books = {book_version: self.codec.apply_message(last, tuple(message))}
        book = self.books.get(book_version)
        if family == "vq" and book is None:
            raise RuntimeError(f"rank {me}: item {int(item)} from rank {src} names codebook version {book_version}, which rank {src} never sent "
                               f"(received: {sorted(self.books) or 'none'}); the link lost a message")
        return Message(kind, int(item), int(version), birth, Encoded(family, tuple(shape), tuple(parts), book, book_version), y)

    def decode(self, x: Encoded) -> torch.Tensor:
        return self.codec.decode(x)


def silent_producer(me: int, src: int, timeout_s: float, detail: object = "") -> PeerTimeout:
    """The error of a rank whose producer `src` sent nothing for `timeout_s`."""
    return PeerTimeout(f"rank {me}: no message from rank {src} (rank {src} crashed or stopped answering; waited up to {timeout_s:g} s)" + (f": {detail}" if detail else ""), src)


def silent_consumer(me: int, dst: int, timeout_s: float | None, detail: object) -> PeerTimeout:
    """The error of a rank whose consumer `dst` takes nothing (`timeout_s`: how long it waited, if it did)."""
    waited = f"; waited up to {timeout_s:g} s" if timeout_s is not None else ""
    return PeerTimeout(f"rank {me}: rank {dst} took no message (rank {dst} crashed or stopped answering{waited}): {detail}", dst)


def send(buffer: torch.Tensor, dst: int, *, me: int) -> dist.Work:
    """Start sending one message; raise PeerTimeout naming `dst` when its connection is gone."""
    try:
        return dist.isend(buffer, dst)
    except RuntimeError as exc:
        raise silent_consumer(me, dst, None, exc) from exc


def recv(buffer: torch.Tensor, src: int, timeout_s: float, *, me: int) -> None:
    """Receive one message into `buffer`, or raise PeerTimeout naming `src`."""
    work = dist.irecv(buffer, src)
    try:
        work.wait(timeout=timedelta(seconds=timeout_s))
    except RuntimeError as exc:
        raise silent_producer(me, src, timeout_s, exc) from exc


def wait_sent(work: dist.Work, dst: int, timeout_s: float, *, me: int) -> None:
    """Wait until a message has left, or raise PeerTimeout naming `dst`."""
    try:
        work.wait(timeout=timedelta(seconds=timeout_s))
    except RuntimeError as exc:
        raise silent_consumer(me, dst, timeout_s, exc) from exc
