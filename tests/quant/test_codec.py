"""Link codecs: exact byte accounting, codebook publication and versions, probes."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from dglsim.errors import InvalidArgument
from dglsim.quant import CODE_FORMATS, CODEBOOK_UPDATES, INITS, Codec, QuantConfig, VQConfig, codebook_drift, stack_codebooks, symmetric_decode, symmetric_encode, to_vectors, vq_assign

configs = st.one_of(
    st.just(QuantConfig()),
    st.builds(lambda f, b: QuantConfig(family=f, bits=b), st.sampled_from(["uniform", "stochastic"]), st.sampled_from([8, 16])),
    st.builds(lambda k, n, r, every, dtype, fmt, update, init: QuantConfig(
                  family="vq", vq=VQConfig(codes=k, groups=n, stages=r, init=init), codebook_every=every, codebook_dtype=dtype,
                  code_format=fmt, codebook_update=update),
              st.sampled_from([2, 16, 256, 300]), st.sampled_from([1, 2, 4]), st.integers(1, 3), st.integers(1, 4), st.sampled_from(["float32", "float16"]),
              st.sampled_from(CODE_FORMATS), st.sampled_from(CODEBOOK_UPDATES), st.sampled_from(INITS)),
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
        if cfg.family == "none" or cfg.code_format != "zstd":  # a zstd frame's size depends on the codes
            assert item.payload_bytes == cfg.item_bytes(tuple(x.shape))
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
    assert item.message[0].dtype == torch.float16 and torch.equal(item.message[0].float(), item.codebook)
    assert torch.equal(item.parts[0], vq_assign(cfg.vq, codec.published[0], to_vectors(x)))  # codes refer to the rounded book


def test_a_probe_changes_nothing():
    cfg = QuantConfig(family="vq", vq=VQConfig(codes=16))
    codec = Codec(cfg, seed=0)
    x = torch.randn(4, 8, 5, 5, generator=torch.Generator().manual_seed(3))
    codec.encode(x)
    before = (codec.state[0].state_dict(), codec.version, codec.encodes, codec.generator.get_state())
    codec.probe(x + 1)
    after = (codec.state[0].state_dict(), codec.version, codec.encodes, codec.generator.get_state())
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


def _consumer_books(cfg: QuantConfig, items) -> list[torch.Tensor]:
    """The codebooks a consumer rebuilds from the messages alone, one per item, as the real
    ranks do (dglsim.ranks.wire): an item without a message decodes with the last one."""
    consumer, book, books = Codec(cfg), None, []
    for item in items:
        if item.message is not None:
            book = consumer.apply_message(book, item.message)
        books.append(book)
    return books


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_delta_publications_rebuild_the_producers_codebooks_exactly(dtype):
    cfg = QuantConfig(family="vq", vq=VQConfig(codes=16, stages=2, groups=2), codebook_every=2, codebook_dtype=dtype, codebook_update="delta")
    codec = Codec(cfg, seed=0)
    g = torch.Generator().manual_seed(4)
    items = [codec.encode(torch.randn(4, 8, 5, 5, generator=g) + 0.2 * t) for t in range(12)]  # a drifting input
    for item, book in zip(items, _consumer_books(cfg, items)):
        assert torch.equal(book, item.codebook)
    first, later = items[0].message, [i.message for i in items[1:] if i.message is not None]
    assert len(first) == 1 and first[0].dtype == getattr(torch, dtype)  # the first publication is the whole codebook
    # deltas: one int8 per codebook value and one float32 scale per stage and group
    assert later and all(m[0].dtype == torch.int8 and sum(t.numel() * t.element_size() for t in m) == 2 * 2 * 16 * 4 + 4 * 2 * 2 for m in later)


def test_delta_rounding_does_not_accumulate():
    """Each delta is taken against the consumer's codebook, so after any number of publications
    the shared codebook is within half an int8 step of the learner's (up to float32 rounding).
    Negative control: deltas taken between successive learner codebooks (open loop) add up
    their rounding errors and end farther than that."""
    cfg = QuantConfig(family="vq", vq=VQConfig(codes=16), codebook_every=1, codebook_update="delta")
    codec = Codec(cfg, seed=0)
    g = torch.Generator().manual_seed(5)
    open_loop, previous = None, None
    for t in range(40):
        codec.encode(torch.randn(8, 8, 6, 6, generator=g) + 0.05 * t)  # a drifting input
        target = stack_codebooks(codec.state)
        open_loop = target.clone() if previous is None else open_loop + symmetric_decode(*symmetric_encode(target - previous))
        previous = target
    half_step = float(codec.pending[1].max()) / 2  # the last delta's scale is max|delta| / 127
    assert float((target - stack_codebooks(codec.published)).abs().max()) <= half_step * (1 + 1e-4) + 1e-6
    assert float((target - open_loop).abs().max()) > 2 * half_step


def test_codes_in_every_format_decode_to_the_same_activation():
    g = torch.Generator().manual_seed(6)
    x = torch.randn(4, 8, 5, 5, generator=g)
    decoded = []
    for fmt in CODE_FORMATS:
        codec = Codec(QuantConfig(family="vq", vq=VQConfig(codes=16, stages=2), code_format=fmt), seed=0)
        item = codec.encode(x)
        decoded.append(codec.decode(item))
        assert torch.equal(codec.codes_of(item).long(), Codec(QuantConfig(family="vq", vq=VQConfig(codes=16, stages=2)), seed=0).encode(x).parts[0].long())
    assert all(torch.equal(decoded[0], d) for d in decoded[1:])


def test_packed_codes_cost_ceil_log2_k_bits():
    x = torch.randn(4, 8, 5, 5, generator=torch.Generator().manual_seed(7))  # 100 vectors
    item = Codec(QuantConfig(family="vq", vq=VQConfig(codes=16, groups=2, stages=3), code_format="packed"), seed=0).encode(x)
    assert item.payload_bytes == -(-100 * 2 * 3 * 4 // 8)  # 4 bits for 16 codes, 6 codes per vector
    whole = Codec(QuantConfig(family="vq", vq=VQConfig(codes=16, groups=2, stages=3)), seed=0).encode(x)
    assert whole.payload_bytes == 100 * 2 * 3


def test_drift_weighs_each_code_by_its_use():
    """A live code that moves by the codebook's spread counts fully; a dead code (a hundred-
    thousandth of the counts) restarted just as far barely counts."""
    old = torch.tensor([[[[0.0], [2.0], [5.0]]]])  # (R, N, K, d) = (1, 1, 3, 1)
    counts = torch.tensor([[[1.0, 1.0, 1e-5]]])
    live, dead = old.clone(), old.clone()
    live[0, 0, 0, 0] = 2.0  # a used code moves by the spread of the used codes
    dead[0, 0, 2, 0] = 105.0  # the unused code jumps 100
    assert codebook_drift(old, old, counts) == 0
    assert codebook_drift(old, live, counts) == pytest.approx(2.0, rel=1e-3)  # w = 1/2 x 4, spread = 1
    assert codebook_drift(old, dead, counts) < 0.1
