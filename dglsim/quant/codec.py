"""Link codecs: what a module's output becomes on the wire and in the consumer's buffer.

The producer encodes its output (B, C, *spatial); the `Encoded` item is what travels and what
the buffer stores; the consumer decodes it. `Encoded.nbytes` is exactly the size of
`Encoded.to_bytes()`, the serialised item: the code tensors, the scalar grid, and the codebook
when the item carries one. Shapes and dtypes are fixed per link and known to both ends, so
they are not sent.

How VQ codebooks travel: the producer encodes with its *published* codebook, the one the
consumer has. Its EMA state learns from every batch (assignments made with the published
codebook: mini-batch k-means with centroids at most `codebook_every` batches old); every
`codebook_every` encodes it publishes the learned codebook, rounded to `codebook_dtype`, and the
next item carries it (its bytes count on that item's link transfer). Each item names the
codebook version it was encoded with; the consumer decodes with that version, so items that
wait in a buffer across a publication still decode correctly, and the consumer holds every
version its buffer still refers to (counted in the buffer's memory).

VQ is residual (dglsim.quant.residual): `vq.stages` stages of `vq.groups` groups of `vq.codes`
codes; with one stage it is plain (product) VQ. Codes travel in `code_format` (whole bytes,
bit-packed or Zstandard-coded; dglsim.quant.packing). A publication's message is the whole
codebook in `codebook_dtype` ("full"), or, with `codebook_update = "delta"`, after the first
publication, the change from the codebook the consumer holds, rounded to int8 with one float32
scale per stage and group: the producer computes each delta against the consumer's codebook, so
rounding errors never accumulate (each delta corrects the last one's). Both ends round the
result to `codebook_dtype` and decode with exactly that codebook.

A message is a tuple of tensors: (codebook,) for a whole codebook, (deltas, scales) for a delta.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np
import torch

from dglsim.constraints import Constraint, int_at_least, one_of, validate_fields
from dglsim.errors import InvalidArgument
from dglsim.quant.packing import CODE_FORMATS, code_bits, pack_codes, unpack_codes
from dglsim.quant.residual import rvq_decode, rvq_encode, rvq_init, rvq_update, stack_codebooks
from dglsim.quant.scalar import SCALAR_BITS, symmetric_decode, symmetric_encode, uniform_decode, uniform_encode
from dglsim.quant.vq import VQConfig, VQState, code_dtype

__all__ = ["QuantConfig", "Encoded", "Codec", "FAMILIES", "CODEBOOK_UPDATES", "to_vectors", "from_vectors", "codebook_drift"]

FAMILIES = ("none", "vq", "uniform", "stochastic")
CODEBOOK_UPDATES = ("full", "delta")


@dataclass(frozen=True)
class QuantConfig:
    family: str = "none"  # none | vq | uniform (nearest rounding) | stochastic (unbiased rounding)
    bits: int = 8  # uniform / stochastic: 8 or 16
    vq: VQConfig = VQConfig()
    codebook_every: int = 10  # vq: encodes between codebook publications
    codebook_dtype: str = "float32"  # vq: how a published codebook travels and is held
    code_format: str = "bytes"  # vq: bytes | packed | zstd (dglsim.quant.packing)
    codebook_update: str = "full"  # vq: full | delta (int8 change from the consumer's codebook)

    CONSTRAINTS: ClassVar[dict[str, Constraint]] = {
        "family": one_of(FAMILIES),
        "bits": one_of(SCALAR_BITS),
        "codebook_every": int_at_least(1),
        "codebook_dtype": one_of(("float32", "float16")),
        "code_format": one_of(CODE_FORMATS),
        "codebook_update": one_of(CODEBOOK_UPDATES),
    }

    def __post_init__(self) -> None:
        validate_fields(self, self.CONSTRAINTS)
        if not isinstance(self.vq, VQConfig):
            raise InvalidArgument(f"'vq' of QuantConfig must be a VQConfig, got {self.vq!r}")

    def item_bytes(self, shape: tuple[int, ...]) -> int:
        """Bytes of the encoded activation of `shape` (B, C, *spatial), codebook messages aside:
        exact for every family and code format but "zstd", whose size depends on the codes (for
        it, the size of the whole-byte codes it compresses: an estimate)."""
        values = int(np.prod(shape))
        if self.family == "none":
            return 4 * values
        if self.family in ("uniform", "stochastic"):
            return values * self.bits // 8 + 8  # codes and the float32 grid (offset, step)
        codes = values // shape[1] * self.vq.stages * self.vq.groups
        if self.code_format == "packed":
            return -(-codes * code_bits(self.vq.codes) // 8)
        return codes * code_dtype(self.vq.codes).itemsize


def to_vectors(x: torch.Tensor) -> torch.Tensor:
    """(B, C, *spatial) -> (B * prod(spatial), C): the channel vector at each position. Free (a
    view) when x is channels-last in memory, as the decoded inputs of the modules are."""
    return x.movedim(1, -1).reshape(-1, x.shape[1])


def from_vectors(v: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """The inverse of to_vectors, without a copy: a (B, C, *spatial) view whose memory is
    channels-last (convolutions take it as it is; their output is channels-last in turn)."""
    b, c, *spatial = shape
    return v.reshape(b, *spatial, c).movedim(-1, 1)


def codebook_drift(old: torch.Tensor, new: torch.Tensor, counts: torch.Tensor) -> float:
    """How far codebooks (R, N, K, d) moved from `old` to `new`, where the vectors are: the
    squared move of each code weighted by its share of the EMA counts (R, N, K) at `old`, over
    the count-weighted spread of `old` around its mean (summed over stages and groups). 0: no
    move; 1: the used codes moved as far as they are spread. Weighting by use is what makes it
    a convergence measure: a dead code restarted on a far vector moves a code nobody used and
    barely counts, while the unweighted mean would be dominated by such restarts."""
    w = counts.float() / counts.float().sum(-1, keepdim=True).clamp_min(1e-30)
    mean = (w[..., None] * old).sum(-2, keepdim=True)
    spread = (w * (old - mean).square().sum(-1)).sum()
    moved = (w * (new - old).square().sum(-1)).sum()
    return float(moved / spread.clamp_min(1e-30))


def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


@dataclass(frozen=True, eq=False)
class Encoded:
    """One encoded activation: parts are serialised; codebook/version say how to decode."""

    family: str
    shape: tuple[int, ...]
    parts: tuple[torch.Tensor, ...]
    codebook: torch.Tensor | None = None  # vq: the float32 codebooks (R, N, K, d) the codes refer to
    version: int = 0  # vq: which published codebook
    message: tuple[torch.Tensor, ...] | None = None  # vq: a publication's message, when this item carries it

    @property
    def float32_bytes(self) -> int:
        """Bytes of the float32 activation this item replaces."""
        return int(np.prod(self.shape)) * 4

    @property
    def payload_bytes(self) -> int:
        return sum(_nbytes(p) for p in self.parts)

    @property
    def message_bytes(self) -> int:
        return sum(_nbytes(t) for t in self.message) if self.message is not None else 0

    @property
    def nbytes(self) -> int:
        return self.payload_bytes + self.message_bytes

    def to_bytes(self) -> bytes:
        tensors = [*self.parts, *(self.message or ())]
        return b"".join(np.ascontiguousarray(t.detach().cpu().numpy()).tobytes() for t in tensors)


class Codec:
    """One link's codec. `encode` runs on the producer (and may learn); `decode` on the consumer."""

    def __init__(self, cfg: QuantConfig, *, seed: int = 0) -> None:
        self.cfg = cfg
        self.generator = torch.Generator().manual_seed(seed)
        self.state: tuple[VQState, ...] | None = None  # vq: the producer's EMA learner, one state per stage
        self.published: tuple[VQState, ...] | None = None  # vq: the codebooks both ends share, one per stage
        self.version = 0
        self.encodes = 0
        self.pending: tuple[torch.Tensor, ...] | None = None  # vq: the message the next item carries
        self.drift: list[float] = []  # vq: codebook_drift at each publication after the first

    @property
    def wire_dtype(self) -> torch.dtype:
        return getattr(torch, self.cfg.codebook_dtype)

    def codebook_bytes(self) -> int:
        """Bytes of one codebook version as a consumer holds it (in codebook_dtype)."""
        if self.cfg.family != "vq" or self.published is None:
            return 0
        return sum(s.codebook.numel() for s in self.published) * torch.finfo(self.wire_dtype).bits // 8

    def encode(self, x: torch.Tensor) -> Encoded:
        """The item the producer sends for its output x; a VQ codec learns from x as it goes."""
        x = x.detach()
        self.encodes += 1
        if self.cfg.family != "vq":
            return self._encode_as_now(x, self.generator)
        vectors = to_vectors(x.float())
        if self.state is None:
            self.state = rvq_init(self.cfg.vq, vectors, self.generator)
            self._publish()
        codes, inputs = rvq_encode(self.cfg.vq, self.published, vectors)
        item = self._item(x, codes)
        if self.pending is not None:  # the first item after a publication carries its message
            item = replace(item, message=self.pending)
            self.pending = None
        self.state = rvq_update(self.cfg.vq, self.state, inputs, codes, self.generator)
        if self.encodes % self.cfg.codebook_every == 0:
            self._publish()
        return item

    def probe(self, x: torch.Tensor) -> Encoded:
        """x encoded as the link would encode it now, without learning from it or drawing from
        the training random stream (stochastic rounding uses a fixed probe stream)."""
        if self.cfg.family == "vq" and self.published is None:
            raise InvalidArgument("'x' of Codec.probe needs a published codebook: encode at least one training batch first")
        return self._encode_as_now(x.detach(), torch.Generator().manual_seed(0))

    def _encode_as_now(self, x: torch.Tensor, generator: torch.Generator) -> Encoded:
        shape, family = tuple(x.shape), self.cfg.family
        if family == "none":
            return Encoded(family, shape, (x.float().contiguous(),))
        if family in ("uniform", "stochastic"):
            return Encoded(family, shape, uniform_encode(x, self.cfg.bits, stochastic=family == "stochastic", generator=generator))
        codes, _ = rvq_encode(self.cfg.vq, self.published, to_vectors(x.float()))
        return self._item(x, codes)

    def _item(self, x: torch.Tensor, codes: torch.Tensor) -> Encoded:
        wire = pack_codes(codes, self.cfg.vq.codes, self.cfg.code_format)
        return Encoded("vq", tuple(x.shape), (wire,), stack_codebooks(self.published), self.version)

    def _publish(self) -> None:
        """Publish the learner's codebooks: the message the next item carries, and the codebooks
        both ends decode with from then on (the message applied to the consumer's codebooks)."""
        target = stack_codebooks(self.state)
        old = stack_codebooks(self.published) if self.published is not None else None
        if old is None or self.cfg.codebook_update == "full":
            message = (target.to(self.wire_dtype),)
        else:
            message = symmetric_encode(target - old)
        book = self.apply_message(old, message)
        if old is not None:
            self.drift.append(codebook_drift(old, book, torch.stack([s.counts for s in self.published])))
        self.published = tuple(VQState(book[r], s.counts, s.sums, s.step) for r, s in enumerate(self.state))
        self.version += 1
        self.pending = message

    def apply_message(self, book: torch.Tensor | None, message: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """The codebooks (R, N, K, d) a consumer holds after `message`, given those it held
        (None before the first): what both ends decode with, rounded to codebook_dtype."""
        if len(message) == 1:
            return message[0].to(torch.float32)
        if book is None:
            raise InvalidArgument("'message' of Codec.apply_message is a codebook delta, but the consumer holds no codebook to apply it to")
        return (book + symmetric_decode(*message)).to(self.wire_dtype).to(torch.float32)

    def codes_of(self, item: Encoded) -> torch.Tensor:
        """The codes (n, R·N) of a VQ item, unpacked from its wire form."""
        c = item.shape[1]
        n = int(np.prod(item.shape)) // c
        return unpack_codes(item.parts[0], n, self.cfg.vq.stages * self.cfg.vq.groups, self.cfg.vq.codes, self.cfg.code_format)

    def decode(self, item: Encoded) -> torch.Tensor:
        if item.family != self.cfg.family:
            raise InvalidArgument(f"'item' of Codec.decode must be encoded by family {self.cfg.family!r}, got {item.family!r}")
        if item.family == "none":
            return item.parts[0]
        if item.family in ("uniform", "stochastic"):
            return uniform_decode(*item.parts).reshape(item.shape)
        return from_vectors(rvq_decode(item.codebook, self.codes_of(item)), item.shape)
