"""Nearest-code search: the pruned search finds the same nearest code as scoring every code."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from dglsim.errors import InvalidArgument
from dglsim.quant.search import CodeIndex, choose_search, nearest_dense

EPS32 = torch.finfo(torch.float32).eps


def _excess(x: torch.Tensor, codes: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
    """Squared distance to the chosen code minus the true minimum (float64), per row, and the
    float32 rounding allowance of a distance computed through dot products of d terms."""
    x64, c64 = x.double(), codes.double()
    d2 = torch.cdist(x64, c64).square()
    excess = d2.gather(1, chosen[:, None]).squeeze(1) - d2.min(1).values
    scale = (x64.norm(dim=1) + c64.norm(dim=1).max()) ** 2
    return excess, 8 * (x.shape[1] + 2) * EPS32 * scale


problems = st.tuples(st.integers(1, 300), st.integers(1, 40), st.integers(1, 200), st.integers(0, 2**31 - 1), st.sampled_from(["gauss", "lowrank", "clustered"]))


def _draw(k, d, n, seed, kind):
    g = torch.Generator().manual_seed(seed)
    if kind == "lowrank":  # activations concentrate on few directions: the case the bound is built for
        basis = torch.randn(min(3, d), d, generator=g)
        codes = torch.randn(k, basis.shape[0], generator=g) @ basis + 0.01 * torch.randn(k, d, generator=g)
        x = torch.randn(n, basis.shape[0], generator=g) @ basis + 0.01 * torch.randn(n, d, generator=g)
    elif kind == "clustered":  # duplicated codes and queries on codes: ties everywhere
        codes = torch.randn(max(1, k // 3), d, generator=g).repeat(3, 1)[:k] if k >= 3 else torch.randn(k, d, generator=g)
        x = codes[torch.randint(codes.shape[0], (n,), generator=g)] + 1e-3 * torch.randn(n, d, generator=g)
    else:
        codes, x = torch.randn(k, d, generator=g), torch.randn(n, d, generator=g) * 2
    return x, codes


@given(problems, st.integers(1, 12), st.integers(1, 20))
def test_pruned_search_returns_a_nearest_code(problem, dims, block):
    x, codes = _draw(*problem)
    chosen = CodeIndex(codes, dims=dims, block=block).nearest(x, rows=64)
    excess, allowance = _excess(x, codes, chosen)
    assert (excess <= allowance).all()


@given(problems)
def test_dense_search_returns_a_nearest_code(problem):
    x, codes = _draw(*problem)
    excess, allowance = _excess(x, codes, nearest_dense(x, codes))
    assert (excess <= allowance).all()


def test_pruned_search_agrees_with_dense_and_scores_few_blocks_on_low_rank_data():
    x, codes = _draw(1024, 64, 4096, 7, "lowrank")
    index = CodeIndex(codes, dims=8, block=32)
    assert torch.equal(index.nearest(x), nearest_dense(x, codes))
    assert index.last_blocks_per_row < 0.25 * index.blocks  # pruning is what makes it pay


def test_bad_input_is_refused_with_the_rule():
    with pytest.raises(InvalidArgument, match="'codes' of CodeIndex must be a \\(K, d\\) tensor"):
        CodeIndex(torch.zeros(3))
    with pytest.raises(InvalidArgument, match="'dims' of CodeIndex must be an int >= 1, got 0"):
        CodeIndex(torch.zeros(3, 2), dims=0)
    with pytest.raises(InvalidArgument, match="'x' of CodeIndex.nearest must be \\(n, 2\\)"):
        CodeIndex(torch.zeros(3, 2)).nearest(torch.zeros(4, 3))
    with pytest.raises(InvalidArgument, match="'search' must be one of"):
        choose_search("fast", 10, 10)
