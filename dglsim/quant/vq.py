"""Online vector quantization: EMA k-means over vectors, optionally split into groups (product
quantization), with explicit, immutable state.

A vector x of C dimensions (the channel vector at one spatial position) is split into N groups
of d = C/N dimensions; group g has its own codebook of K codes. Its code is the index of the
nearest code in each group.

The codebook learns online (exponential moving averages, as in VQ-VAE's EMA variant): per code,
a count n_k and a sum s_k decay by gamma and take the vectors assigned to it,

    n_k <- gamma n_k + (1 - gamma) |{x -> k}|,    s_k <- gamma s_k + (1 - gamma) sum_{x -> k} x,

counts are Laplace-smoothed, n~_k = (n_k + eps) / (n + K eps) * n with n = sum_k n_k, and the
code is s_k / n~_k. A code whose count falls below `dead_below` times the mean count is restarted
on a vector of the current batch, drawn at random. `init` and `update` return new state; nothing
is changed in place.

Initialisation (`init`): "random" draws K distinct vectors of the first batch, each with a count
of one, so the EMA's first steps overwrite them with batch means (the first codebooks are poor
and move fast). "kmeans++" seeds K codes by D^2 sampling (Arthur and Vassilvitskii 2007) on a
sample of the first batch, then runs `lloyd_iters` Lloyd iterations on that sample; each code
starts with the count of sample vectors it holds, rescaled to the batch, which is the EMA's fixed
point for that batch: the codebook starts at a k-means solution and the EMA moves it only as
fast as the activations move. Like faiss's k-means, the sample is capped (`init_sample` vectors
per code), which keeps the cost of initialisation to a few batch encodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch

from dglsim.constraints import Constraint, int_at_least, one_of, real_in, validate_fields
from dglsim.errors import InvalidArgument
from dglsim.quant.search import SEARCHES, CodeIndex, choose_search, nearest_dense

__all__ = ["VQConfig", "VQState", "vq_init", "vq_assign", "vq_update", "vq_decode", "code_dtype", "INITS"]

INITS = ("random", "kmeans++")


def code_dtype(k: int) -> torch.dtype:
    """The smallest integer type that holds indices 0..k-1."""
    if k <= 2**8:
        return torch.uint8
    if k <= 2**16:
        return torch.uint16
    return torch.int32


@dataclass(frozen=True)
class VQConfig:
    codes: int = 256  # K, per group
    groups: int = 1  # N; the vector's dimension must be divisible by it
    gamma: float = 0.99  # EMA decay of counts and sums
    epsilon: float = 1e-5  # Laplace smoothing of the counts
    dead_below: float = 0.01  # restart a code whose count is below this fraction of the mean count
    search: str = "auto"  # nearest-code search: dense | pruned | auto (see dglsim.quant.search)
    search_dims: int = 32
    search_block: int = 32
    stages: int = 1  # R: residual stages (dglsim.quant.residual); stage r quantizes what stages < r left
    init: str = "random"  # random | kmeans++ (see the module docstring)
    lloyd_iters: int = 0  # kmeans++: Lloyd iterations on the first batch's sample after seeding
    init_sample: int = 64  # kmeans++: at most this many sample vectors per code

    CONSTRAINTS: ClassVar[dict[str, Constraint]] = {
        "codes": int_at_least(2),
        "groups": int_at_least(1),
        "gamma": real_in(0.0, 1.0, high_open=True),
        "epsilon": real_in(0.0, 1.0, low_open=True),
        "dead_below": real_in(0.0, 1.0),
        "search": one_of(SEARCHES),
        "search_dims": int_at_least(1),
        "search_block": int_at_least(1),
        "stages": int_at_least(1),
        "init": one_of(INITS),
        "lloyd_iters": int_at_least(0),
        "init_sample": int_at_least(1),
    }

    def __post_init__(self) -> None:
        validate_fields(self, self.CONSTRAINTS)
        if self.lloyd_iters and self.init != "kmeans++":
            raise InvalidArgument(f"'lloyd_iters' of VQConfig must be 0 unless init is 'kmeans++' (Lloyd iterations refine a k-means++ seeding), got {self.lloyd_iters!r} with init {self.init!r}")


@dataclass(frozen=True, eq=False)
class VQState:
    """codebook (N, K, d); counts (N, K); sums (N, K, d); step: updates so far."""

    codebook: torch.Tensor
    counts: torch.Tensor
    sums: torch.Tensor
    step: int = 0
    _indexes: dict = field(default_factory=dict, repr=False, compare=False)  # search structures, built on demand

    def equals(self, other: "VQState") -> bool:
        return self.step == other.step and all(torch.equal(a, b) for a, b in zip(self.tensors(), other.tensors()))

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.codebook, self.counts, self.sums

    def state_dict(self) -> dict:
        return {"codebook": self.codebook.clone(), "counts": self.counts.clone(), "sums": self.sums.clone(), "step": self.step}

    @classmethod
    def from_state_dict(cls, d: dict) -> "VQState":
        return cls(d["codebook"], d["counts"], d["sums"], int(d["step"]))

    def index(self, group: int, cfg: VQConfig) -> CodeIndex:
        if group not in self._indexes:
            self._indexes[group] = CodeIndex(self.codebook[group], dims=cfg.search_dims, block=cfg.search_block)
        return self._indexes[group]


def _split(cfg: VQConfig, x: torch.Tensor) -> torch.Tensor:
    """(n, C) -> (N, n, d)."""
    if x.ndim != 2 or x.shape[1] % cfg.groups:
        raise InvalidArgument(f"'x' must be (n, C) with C divisible by groups = {cfg.groups}, got shape {tuple(x.shape)}")
    n, c = x.shape
    return x.float().reshape(n, cfg.groups, c // cfg.groups).transpose(0, 1)


def vq_init(cfg: VQConfig, x: torch.Tensor, generator: torch.Generator) -> VQState:
    """Codebooks (N, K, d) learned from the vectors of x (n, C) by `cfg.init`."""
    parts = _split(cfg, x)
    n = parts.shape[1]
    if n < cfg.codes:
        raise InvalidArgument(f"'x' of vq_init must hold at least codes = {cfg.codes} vectors to draw the codebook from, got {n}")
    if cfg.init == "random":
        picks = [torch.randperm(n, generator=generator)[: cfg.codes] for _ in range(cfg.groups)]
        codebook = torch.stack([parts[g, idx] for g, idx in enumerate(picks)]).contiguous()
        counts = torch.ones(cfg.groups, cfg.codes)
        return VQState(codebook, counts, codebook.clone(), 0)
    books, counts = [], []
    for g in range(cfg.groups):
        sample = parts[g]
        if n > cfg.init_sample * cfg.codes:
            sample = sample[torch.randperm(n, generator=generator)[: cfg.init_sample * cfg.codes]]
        book = kmeans_plusplus(sample, cfg.codes, generator)
        for _ in range(cfg.lloyd_iters):
            book = lloyd_step(sample, book)
        held = torch.bincount(nearest_dense(sample, book), minlength=cfg.codes).float() * (n / sample.shape[0])
        books.append(book)
        counts.append(held)
    codebook, counts = torch.stack(books).contiguous(), torch.stack(counts)
    return VQState(codebook, counts, codebook * counts[..., None], 0)


def kmeans_plusplus(x: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """k rows of x (n, d) by D^2 sampling: the first uniformly, each next with probability
    proportional to its squared distance to the nearest row chosen so far. Rows already chosen
    have distance 0 and are never drawn again while another row is farther; if every row is at
    distance 0 (fewer distinct rows than k), the draw falls back to uniform."""
    n = x.shape[0]
    chosen = torch.empty(k, dtype=torch.long)
    chosen[0] = torch.randint(n, (1,), generator=generator)
    nearest2 = (x - x[chosen[0]]).square().sum(1)
    for i in range(1, k):
        weights = nearest2.double()
        total = float(weights.sum())
        chosen[i] = torch.multinomial(weights if total > 0 else torch.ones(n, dtype=torch.float64), 1, generator=generator)
        nearest2 = torch.minimum(nearest2, (x - x[chosen[i]]).square().sum(1))
    return x[chosen].clone()


def lloyd_step(x: torch.Tensor, book: torch.Tensor) -> torch.Tensor:
    """One Lloyd iteration: every code moves to the mean of the rows of x nearest to it; a code
    that holds no row stays where it is."""
    idx = nearest_dense(x, book)
    counts = torch.bincount(idx, minlength=book.shape[0]).float()
    sums = torch.zeros_like(book).index_add_(0, idx, x)
    held = counts > 0
    return torch.where(held[:, None], sums / counts.clamp_min(1)[:, None], book)


def vq_assign(cfg: VQConfig, state: VQState, x: torch.Tensor) -> torch.Tensor:
    """Codes (n, N) of x (n, C): the nearest code of each group, in the smallest integer type."""
    parts = _split(cfg, x)
    k, d = cfg.codes, parts.shape[2]
    method = choose_search(cfg.search, k, d)
    codes = torch.empty(parts.shape[1], cfg.groups, dtype=code_dtype(k), device=x.device)
    for g in range(cfg.groups):
        part = parts[g].contiguous()
        idx = state.index(g, cfg).nearest(part) if method == "pruned" else nearest_dense(part, state.codebook[g])
        codes[:, g] = idx.to(codes.dtype)
    return codes


def vq_decode(codebook: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """Vectors (n, C) of codes (n, N) under codebook (N, K, d)."""
    groups, _, d = codebook.shape
    idx = codes.long()
    parts = [codebook[g].index_select(0, idx[:, g]) for g in range(groups)]
    return torch.cat(parts, 1) if groups > 1 else parts[0]


def vq_update(cfg: VQConfig, state: VQState, x: torch.Tensor, codes: torch.Tensor, generator: torch.Generator) -> VQState:
    """One EMA k-means step on x (n, C) with its codes (n, N); returns the new state."""
    parts = _split(cfg, x)
    k, gamma = cfg.codes, cfg.gamma
    idx = codes.long()
    counts = torch.empty_like(state.counts)
    sums = torch.empty_like(state.sums)
    for g in range(cfg.groups):
        batch_counts = torch.bincount(idx[:, g], minlength=k).float()
        batch_sums = torch.zeros_like(state.sums[g]).index_add_(0, idx[:, g], parts[g])
        counts[g] = gamma * state.counts[g] + (1 - gamma) * batch_counts
        sums[g] = gamma * state.sums[g] + (1 - gamma) * batch_sums
    # Restart dead codes on random vectors of this batch, with the mean count as their weight,
    # so a restarted code is neither ignored nor dominant.
    mean = counts.mean(1, keepdim=True)
    dead = counts < cfg.dead_below * mean
    for g in range(cfg.groups):
        which = dead[g].nonzero().squeeze(1)
        if which.numel():
            draw = torch.randint(parts.shape[1], (which.numel(),), generator=generator)
            counts[g, which] = mean[g, 0]
            sums[g, which] = parts[g, draw] * mean[g, 0]
    total = counts.sum(1, keepdim=True)
    smoothed = (counts + cfg.epsilon) / (total + k * cfg.epsilon) * total
    codebook = sums / smoothed[..., None]
    return VQState(codebook.contiguous(), counts, sums, state.step + 1)
