"""Link codecs: exact byte accounting, codebook publication and versions, probes."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from dglsim.errors import InvalidArgument
from dglsim.quant import Codec, QuantConfig, VQConfig, to_vectors, vq_assign

configs = st.one_of(
    st.just(QuantConfig()),
    st.builds(lambda f, b: QuantConfig(family=f, bits=b), st.sampled_from(["uniform", "stochastic"]), st.sampled_from([8, 16])),
    st.builds(lambda k, n, every, dtype: QuantConfig(family="vq", vq=VQConfig(codes=k, groups=n), codebook_every=every, codebook_dtype=dtype),
              st.sampled_from([2, 16, 256, 300]), st.sampled_from([1, 2, 4]), st.integers(1, 4), st.sampled_from(["float32", "float16"])),
)


@given(configs, st.integers(1, 4), st.sampled_from([(), (4,), (5, 3)]), st.integers(0, 1000))
def test_byte_accounting_equals_what_is_serialised(cfg, batch, spatial, seed):
    g = torch.Generator().manual_seed(seed)
    channels = 8
    codec = Codec(cfg, seed=seed)
    for _ in range(5):
        # VQ draws its first codebook from the first batch: it needs at least K vectors
        x = torch.relu(torch.randn(batch * 300, channels, *spatial, generator=g))  # >= 300 vectors
        item = codec.encode(x)
        assert len(item.to_bytes()) == item.nbytes
        assert item.float32_bytes == x.numel() * 4
        assert codec.decode(item).shape == x.shape


def test_codebooks_are_published_every_n_encodes_and_travel_once():
    cfg = QuantConfig(family="vq", vq=VQConfig(codes=16), codebook_every=3)
    codec = Codec(cfg, seed=0)
    g = torch.Generator().manual_seed(0)
    items = [codec.encode(torch.randn(4, 8, 5, 5, generator=g)) for _ in range(7)]
    # version 1 at the first encode; publications after encodes 3 and 6; the next item carries each
    assert [i.version for i in items] == [1, 1, 1, 2, 2, 2, 3]
    assert [i.message is not None for i in items] == [True, False, False, True, False, False, True]
    assert all(i.message_bytes == 16 * 8 * 4 for i in items if i.message is not None)
    assert len(codec.drift) == 2 and all(d > 0 for d in codec.drift)


def test_an_item_decodes_with_its_own_codebook_after_a_publication():
    cfg = QuantConfig(family="vq", vq=VQConfig(codes=16), codebook_every=1)
    codec = Codec(cfg, seed=0)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 8, 5, 5, generator=g)
    first = codec.encode(x)
    expected = codec.decode(first)
    for _ in range(3):
        codec.encode(torch.randn(4, 8, 5, 5, generator=g) + 3)  # the codebook moves
    assert codec.version == 5 and first.version == 1
    assert torch.equal(codec.decode(first), expected)


def test_float16_codebooks_are_what_the_producer_encodes_with():
    cfg = QuantConfig(family="vq", vq=VQConfig(codes=16, search="dense"), codebook_dtype="float16")
    codec = Codec(cfg, seed=0)
    x = torch.randn(4, 8, 5, 5, generator=torch.Generator().manual_seed(2))
    item = codec.encode(x)
    assert item.message.dtype == torch.float16 and torch.equal(item.message.float(), item.codebook)
    assert torch.equal(item.parts[0], vq_assign(cfg.vq, codec.published, to_vectors(x)))  # codes refer to the rounded book


def test_a_probe_changes_nothing():
    cfg = QuantConfig(family="vq", vq=VQConfig(codes=16))
    codec = Codec(cfg, seed=0)
    x = torch.randn(4, 8, 5, 5, generator=torch.Generator().manual_seed(3))
    codec.encode(x)
    before = (codec.state.state_dict(), codec.version, codec.encodes, codec.generator.get_state())
    codec.probe(x + 1)
    after = (codec.state.state_dict(), codec.version, codec.encodes, codec.generator.get_state())
    assert all(torch.equal(a, b) for a, b in zip(before[0].values(), after[0].values()) if isinstance(a, torch.Tensor))
    assert before[1:3] == after[1:3] and torch.equal(before[3], after[3])
    with pytest.raises(InvalidArgument, match="needs a published codebook"):
        Codec(cfg).probe(x)


def test_bad_config_is_refused_with_the_rule():
    with pytest.raises(InvalidArgument, match="'family' of QuantConfig must be one of"):
        QuantConfig(family="fp8")
    with pytest.raises(InvalidArgument, match="'codebook_every' of QuantConfig must be an int >= 1, got 0"):
        QuantConfig(codebook_every=0)
    codec = Codec(QuantConfig(family="uniform"))
    with pytest.raises(InvalidArgument, match="must be encoded by family 'uniform', got 'none'"):
        codec.decode(Codec(QuantConfig()).encode(torch.zeros(2, 3)))
