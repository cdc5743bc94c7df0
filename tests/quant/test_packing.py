"""Code formats on the wire: bit-packing and Zstandard round-trip exactly, and the bytes
counted are the bytes produced."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from dglsim.errors import InvalidArgument
from dglsim.quant import CODE_FORMATS, code_bits, code_dtype, pack_codes, unpack_codes


@given(st.integers(2, 70000), st.integers(1, 300), st.integers(1, 6), st.sampled_from(CODE_FORMATS), st.integers(0, 2**31 - 1))
def test_codes_round_trip_in_every_format(k, n, m, fmt, seed):
    rng = np.random.default_rng(seed)
    codes = torch.from_numpy(rng.integers(0, k, size=(n, m)).astype(np.int64)).to(code_dtype(k))
    wire = pack_codes(codes, k, fmt)
    back = unpack_codes(wire, n, m, k, fmt)
    assert back.dtype == code_dtype(k) and torch.equal(back.long(), codes.long())
    if fmt == "packed":
        assert wire.dtype == torch.uint8 and wire.numel() == math.ceil(n * m * code_bits(k) / 8)


def test_bits_per_code():
    assert [code_bits(k) for k in (2, 3, 4, 16, 17, 1024, 1025)] == [1, 2, 2, 4, 5, 10, 11]


def test_zstd_counts_real_bytes_and_cannot_beat_the_entropy():
    """Uniform codes over 256 values carry 8 bits each: no coder can store them in fewer bytes
    than codes (source coding theorem; the frame adds a header). Codes that repeat compress."""
    rng = np.random.default_rng(0)
    uniform = torch.from_numpy(rng.integers(0, 256, size=(40000, 1)).astype(np.uint8))
    assert pack_codes(uniform, 256, "zstd").numel() >= 40000
    skewed = torch.from_numpy(rng.choice(4, size=(40000, 1), p=[0.85, 0.05, 0.05, 0.05]).astype(np.uint8))
    size = pack_codes(skewed, 256, "zstd").numel()
    entropy_bytes = 40000 * -(0.85 * np.log2(0.85) + 3 * 0.05 * np.log2(0.05)) / 8
    assert entropy_bytes <= size < 0.2 * 40000


def test_an_unknown_format_is_refused():
    with pytest.raises(InvalidArgument, match="'fmt' of pack_codes must be one of"):
        pack_codes(torch.zeros(2, 1, dtype=torch.uint8), 4, "huffman")
