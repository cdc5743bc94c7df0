"""How VQ codes are laid out on the wire: whole bytes, bit-packed, or entropy-coded.

- "bytes": each code in the smallest integer type that holds it (8 bits for K = 16: half wasted);
- "packed": ceil(log2 K) bits per code, little-endian bit order, the last byte zero-padded;
- "zstd": the whole-byte codes compressed by Zstandard (level 3). Zstandard's literal stage is a
  Huffman coder over bytes and its match stage finds repeated runs, so whole-byte codes let it see
  each code as one symbol; bit-packed codes would hide the symbols from it (a 6-bit code would
  straddle bytes). The bytes counted are the compressed frame's, header included.

Codes (n, m) are serialised column by column (each stage and group's n codes together, in
position order): codes of one column share a distribution, and neighbouring positions often
share a code, which is what the entropy coder exploits. Both ends know n, m and K from the
link's fixed shapes, so none of them travels.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import zstandard

from dglsim.errors import InvalidArgument
from dglsim.quant.vq import code_dtype

__all__ = ["CODE_FORMATS", "code_bits", "pack_codes", "unpack_codes"]

CODE_FORMATS = ("bytes", "packed", "zstd")
_ZSTD_LEVEL = 3  # zstd's default: most of the ratio of higher levels at a fraction of the time
_NUMPY = {torch.uint8: np.uint8, torch.uint16: np.uint16, torch.int32: np.int32}


def code_bits(k: int) -> int:
    """Bits per code when K codes are bit-packed: ceil(log2 K)."""
    return max(1, math.ceil(math.log2(k)))


def _columns(codes: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(codes.detach().cpu().T.numpy())


def pack_codes(codes: torch.Tensor, k: int, fmt: str) -> torch.Tensor:
    """The wire form of codes (n, m), values in [0, k), as a flat uint8 tensor ("bytes": the
    codes tensor itself, unchanged)."""
    if fmt not in CODE_FORMATS:
        raise InvalidArgument(f"'fmt' of pack_codes must be one of {list(CODE_FORMATS)}, got {fmt!r}")
    if fmt == "bytes":
        return codes
    columns = _columns(codes)
    if fmt == "zstd":
        frame = zstandard.ZstdCompressor(level=_ZSTD_LEVEL).compress(columns.tobytes())
        return torch.frombuffer(bytearray(frame), dtype=torch.uint8)
    bits = code_bits(k)
    values = columns.reshape(-1).astype(np.uint32)
    expanded = ((values[:, None] >> np.arange(bits, dtype=np.uint32)) & 1).astype(np.uint8)
    return torch.from_numpy(np.packbits(expanded, axis=None, bitorder="little"))


def unpack_codes(wire: torch.Tensor, n: int, m: int, k: int, fmt: str) -> torch.Tensor:
    """Codes (n, m) in code_dtype(k) from their wire form (the inverse of pack_codes)."""
    if fmt not in CODE_FORMATS:
        raise InvalidArgument(f"'fmt' of unpack_codes must be one of {list(CODE_FORMATS)}, got {fmt!r}")
    if fmt == "bytes":
        return wire
    dtype = _NUMPY[code_dtype(k)]
    if fmt == "zstd":
        raw = zstandard.ZstdDecompressor().decompress(wire.numpy().tobytes(), max_output_size=n * m * np.dtype(dtype).itemsize)
        return torch.from_numpy(np.frombuffer(raw, dtype=dtype).reshape(m, n).T.copy())
    bits = code_bits(k)
    expanded = np.unpackbits(wire.numpy(), count=n * m * bits, bitorder="little").reshape(-1, bits)
    values = expanded.astype(np.uint32) @ (np.uint32(1) << np.arange(bits, dtype=np.uint32))
    return torch.from_numpy(values.reshape(m, n).T.astype(dtype))
