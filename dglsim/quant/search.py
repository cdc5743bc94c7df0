"""Exact nearest-code search: the dense reference and a pruned search that skips most codes.

Dense search scores every code: argmin_c ||c||^2/2 - x.c, one matmul and one reduction over an
(n, K) matrix. On a CPU that matrix, not the arithmetic, is the cost: writing and reducing
n*K floats dominates once K is in the hundreds.

`CodeIndex` finds the same nearest code while touching few codes per vector. It relies on a
lower bound that holds for any orthonormal basis P of a subspace (here the top principal
directions of the codebook): split x - mu and c - mu into their projections (xp, cp) and
residuals with norms (rx, rc); Cauchy-Schwarz on the residuals gives

    x.c <= xp.cp + rx*rc,  so  score(c) = ||c||^2/2 - x.c  >=  ||c||^2/2 - [xp, rx].[cp, rc]

(all centred at mu). The bound is one matmul in p+1 dimensions instead of d. Codes are laid out
in blocks of nearby codes; a block whose smallest bound exceeds the exact score of the
best-bounded code cannot hold the nearest code and is skipped. The surviving (vector, block)
pairs are scored exactly. Activations concentrate on few principal directions, so few blocks
survive. The result is the exact nearest code up to float32 rounding, like the dense search:
the pruning margin covers the rounding of both sides.
"""

from __future__ import annotations

import torch

from dglsim.errors import InvalidArgument

__all__ = ["nearest_dense", "CodeIndex", "SEARCHES", "choose_search"]

SEARCHES = ("auto", "dense", "pruned")
_EPS32 = float(torch.finfo(torch.float32).eps)


def _dense_scores_argmin(x: torch.Tensor, codes: torch.Tensor, half_norms: torch.Tensor, rows: int = 2048) -> torch.Tensor:
    out = torch.empty(x.shape[0], dtype=torch.long, device=x.device)
    codes_t = codes.T
    for start in range(0, x.shape[0], rows):  # row blocks keep the score matrix in cache
        scores = torch.addmm(half_norms, x[start : start + rows], codes_t, alpha=-1)
        out[start : start + rows] = scores.min(1).indices
    return out


def nearest_dense(x: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """Index of the nearest row of `codes` (K, d) for each row of `x` (n, d), by scoring all K."""
    return _dense_scores_argmin(x, codes, (codes * codes).sum(1) / 2)


def _balanced_blocks(points: torch.Tensor, block: int) -> torch.Tensor:
    """A permutation of the rows of `points` that puts nearby rows in consecutive blocks of
    `block`: recursive median splits along each group's widest coordinate (a balanced k-d tree)."""
    groups = [torch.arange(points.shape[0], device=points.device)]
    while max(len(g) for g in groups) > block:
        nxt = []
        for g in groups:
            if len(g) <= block:
                nxt.append(g)
                continue
            sub = points[g]
            axis = int((sub.amax(0) - sub.amin(0)).argmax())
            order = g[torch.argsort(sub[:, axis], stable=True)]
            # split on a block boundary so that every block but the last is full
            half = max(block, (len(g) // 2) // block * block)
            nxt += [order[:half], order[half:]]
        groups = nxt
    return torch.cat(groups)


class CodeIndex:
    """A codebook prepared for pruned exact search. Build it once per codebook (its structures
    never change); `last_blocks_per_row` records how many blocks the last query scored exactly.

    dims: size of the principal subspace the bound uses (more: tighter bound, costlier matmul).
    block: codes per block (the pruning unit).
    """

    def __init__(self, codes: torch.Tensor, *, dims: int = 32, block: int = 32) -> None:
        if codes.ndim != 2 or codes.shape[0] < 1:
            raise InvalidArgument(f"'codes' of CodeIndex must be a (K, d) tensor with K >= 1, got shape {tuple(codes.shape)}")
        if not isinstance(dims, int) or dims < 1:
            raise InvalidArgument(f"'dims' of CodeIndex must be an int >= 1, got {dims!r}")
        if not isinstance(block, int) or block < 1:
            raise InvalidArgument(f"'block' of CodeIndex must be an int >= 1, got {block!r}")
        codes = codes.float()
        k, d = codes.shape
        self.k, self.d, self.block = k, d, block
        self.mu = codes.mean(0)
        centred = codes - self.mu
        p = min(dims, d)
        # principal directions of the codebook; any orthonormal basis keeps the bound valid
        _, _, vh = torch.linalg.svd(centred, full_matrices=False)
        basis = vh[:p].T.contiguous()
        if basis.shape[1] < p:  # fewer codes than dims: the span of the codes is all we need
            p = basis.shape[1]
        self.basis = basis
        projected = centred @ basis
        perm = _balanced_blocks(projected, block)
        pad = (-k) % block
        self.blocks = (k + pad) // block
        self.position_to_code = torch.cat([perm, perm.new_zeros(pad)])
        centred = centred[perm]
        projected = projected[perm]
        norms2 = (centred * centred).sum(1)
        residual = (norms2 - (projected * projected).sum(1)).clamp_min(0).sqrt()
        half = norms2 / 2
        # padding codes can never win: an infinite half-norm makes their bound +inf
        self.half_norms = torch.cat([half, half.new_full((pad,), float("inf"))])
        augmented = torch.cat([projected, residual[:, None]], 1)
        self.augmented_t = torch.cat([augmented, augmented.new_zeros(pad, p + 1)]).T.contiguous()  # (p+1, K+pad)
        raw = codes[perm]
        raw_half = (raw * raw).sum(1) / 2
        self.raw_half_norms = torch.cat([raw_half, raw_half.new_full((pad,), float("inf"))])
        self.raw_t = torch.cat([raw, raw.new_zeros(pad, d)]).T.contiguous()  # (d, K+pad), exact block scores
        self.project = torch.cat([basis, self.mu[:, None]], 1).contiguous()  # (d, p+1)
        self.mu_projected = self.mu @ basis
        self.mu_norm2 = float(self.mu @ self.mu)
        self.code_norm_max = float(raw.norm(dim=1).max())

    def nearest(self, x: torch.Tensor, *, rows: int = 256) -> torch.Tensor:
        """Index (into the original codebook) of the nearest code for each row of x (n, d)."""
        if x.ndim != 2 or x.shape[1] != self.d:
            raise InvalidArgument(f"'x' of CodeIndex.nearest must be (n, {self.d}), got shape {tuple(x.shape)}")
        x = x.float().contiguous()
        n, b, nb = x.shape[0], self.block, self.blocks
        xa, xnorm, shift = self._augment(x)
        # Float32 rounding of a dot product of m terms is at most about m*eps*|x||c|; every term
        # here (norms, products, centred or raw) is at most (|x|+|mu|)(max|c|+|mu|), so this margin
        # covers the rounding of the bound and of the exact score: rounding never prunes the winner.
        mu_norm = self.mu_norm2**0.5
        margin = 8 * (self.d + 2) * _EPS32 * (xnorm + mu_norm) * (self.code_norm_max + mu_norm)
        block_bound = torch.empty(n, nb, device=x.device)
        scratch = torch.empty(min(rows, n), nb * b, device=x.device)
        for start in range(0, n, rows):  # row chunks keep the (rows, K) bound matrix in cache
            stop = min(start + rows, n)
            bound = scratch[: stop - start]
            torch.addmm(self.half_norms, xa[start:stop], self.augmented_t, alpha=-1, out=bound)
            torch.amin(bound.view(stop - start, nb, b), 2, out=block_bound[start:stop])
        # Round 1: score each vector's most promising block exactly; its best is an upper bound.
        first = block_bound.argmin(1)
        everyone = torch.arange(n, device=x.device)
        score, position = self._score_pairs(x, everyone, first)
        # Round 2: every other block whose bound does not exceed that upper bound.
        # bounds are centred at mu, exact scores are not: score_centred = score + x.mu - |mu|^2/2
        keep = block_bound <= (score + shift + margin)[:, None]
        keep[everyone, first] = False
        more_rows, more_blocks = keep.nonzero(as_tuple=True)
        self.last_blocks_per_row = 1 + more_rows.shape[0] / max(n, 1)  # blocks scored exactly, on average
        if more_rows.shape[0]:
            more_score, more_position = self._score_pairs(x, more_rows, more_blocks)
            better = more_score < score[more_rows]
            best = score.scatter_reduce(0, more_rows[better], more_score[better], "amin")
            # among equal scores the lowest position wins, as in one pass over all candidates
            rows_all = torch.cat([everyone, more_rows])
            score_all = torch.cat([score, more_score])
            pos_all = torch.cat([position, more_position])
            winners = score_all == best[rows_all]
            position = torch.full((n,), nb * b, dtype=torch.long, device=x.device)
            position = position.scatter_reduce(0, rows_all[winners], pos_all[winners], "amin")
        return self.position_to_code[position]

    def _augment(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """[xp, rx] per row (projection on the basis and residual norm, centred at mu), ||x||, and
        x.mu - |mu|^2/2 (what turns an uncentred score into a centred one)."""
        proj = x @ self.project  # (n, p+1): x.P and x.mu
        xnorm2 = torch.linalg.vector_norm(x, dim=1).square()
        xp = proj[:, :-1] - self.mu_projected
        centred2 = xnorm2 - 2 * proj[:, -1] + self.mu_norm2
        residual = (centred2 - (xp * xp).sum(1)).clamp_min(0).sqrt()
        return torch.cat([xp, residual[:, None]], 1), xnorm2.sqrt(), proj[:, -1] - self.mu_norm2 / 2

    def _score_pairs(self, x: torch.Tensor, rows: torch.Tensor, blocks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Best exact score and code position within block blocks[i] for vector rows[i]."""
        b = self.block
        order = torch.argsort(blocks, stable=True)
        sorted_rows = rows[order]
        gathered = torch.index_select(x, 0, sorted_rows)
        counts = torch.bincount(blocks, minlength=self.blocks).tolist()
        score = torch.empty(rows.shape[0], device=x.device)
        position = torch.empty(rows.shape[0], dtype=torch.long, device=x.device)
        offset = 0
        for blk, count in enumerate(counts):
            if count:
                lo = blk * b
                scores = torch.addmm(self.raw_half_norms[lo : lo + b], gathered[offset : offset + count], self.raw_t[:, lo : lo + b], alpha=-1)
                best = scores.min(1)
                score[offset : offset + count] = best.values
                position[offset : offset + count] = best.indices + lo
                offset += count
        unsort = torch.empty_like(order)
        unsort[order] = torch.arange(order.shape[0], device=x.device)
        return score[unsort], position[unsort]


def choose_search(search: str, k: int, d: int) -> str:
    """The search `auto` picks: pruned where it pays (many codes, a bound in fewer dims than d)."""
    if search not in SEARCHES:
        raise InvalidArgument(f"'search' must be one of {list(SEARCHES)}, got {search!r}")
    if search != "auto":
        return search
    return "pruned" if k >= 512 and d >= 32 else "dense"
