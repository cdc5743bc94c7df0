"""Residual vector quantization (RVQ): R stages of online VQ, stage r quantizing what stages < r
left of the vector.

A vector x (C dimensions) is coded as R·N indices: stage 0 encodes x with its (product) codebook
of N groups of K codes, stage 1 encodes the residual x - Q_0(x), and so on; the decoded vector is
the sum of the R stages' codes. Bits per vector are R·N·log2 K, while the search scores R·K codes
per group instead of the K^R of one stage at equal bits: this is why audio codecs (SoundStream,
Zeghidour et al. 2021; EnCodec, Défossez et al. 2022) quantize with residual stages. With R = 1
it is exactly the one-stage VQ of dglsim.quant.vq.

Each stage is a `VQState` of dglsim.quant.vq with the shared `VQConfig` (codes, groups, gamma,
init); stage r learns, with the EMA update, on the residuals it was asked to encode. Codes are
laid out stage-major: column r·N + g is stage r, group g. A stack of R codebooks is a tensor
(R, N, K, d).
"""

from __future__ import annotations

import torch

from dglsim.quant.vq import VQConfig, VQState, vq_assign, vq_decode, vq_init, vq_update

__all__ = ["rvq_init", "rvq_encode", "rvq_decode", "rvq_update", "stack_codebooks"]


def stack_codebooks(states: tuple[VQState, ...]) -> torch.Tensor:
    """The stages' codebooks as one (R, N, K, d) tensor."""
    return torch.stack([s.codebook for s in states])


def rvq_init(cfg: VQConfig, x: torch.Tensor, generator: torch.Generator) -> tuple[VQState, ...]:
    """R stage states learned from x (n, C): stage r is initialised (by cfg.init) on the
    residuals that stages < r leave of x."""
    residual = x.float()
    states = []
    for _ in range(cfg.stages):
        state = vq_init(cfg, residual, generator)
        states.append(state)
        residual = _what_is_left(state, residual, vq_assign(cfg, state, residual))
    return tuple(states)


def _what_is_left(state: VQState, residual: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """residual - the stage's decoded codes, written into the decoded tensor, a fresh one: an
    allocating subtraction of this size costs several times the arithmetic on glibc's allocator
    (page faults on new memory)."""
    decoded = vq_decode(state.codebook, codes)
    return torch.sub(residual, decoded, out=decoded)


def rvq_encode(cfg: VQConfig, states: tuple[VQState, ...], x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """(codes (n, R·N), the input each stage encoded: x, then its residuals) for x (n, C)."""
    residual = x.float()
    codes, inputs = [], []
    for r, state in enumerate(states):
        inputs.append(residual)
        stage_codes = vq_assign(cfg, state, residual)
        codes.append(stage_codes)
        if r + 1 < len(states):  # the last stage's residual is not needed
            residual = _what_is_left(state, residual, stage_codes)
    return (torch.cat(codes, 1) if len(codes) > 1 else codes[0]), inputs


def rvq_decode(codebooks: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """Vectors (n, C): the sum over stages of each stage's decoded codes. codebooks (R, N, K, d),
    codes (n, R·N)."""
    stages, groups = codebooks.shape[:2]
    out = vq_decode(codebooks[0], codes[:, :groups])
    for r in range(1, stages):
        out.add_(vq_decode(codebooks[r], codes[:, r * groups : (r + 1) * groups]))  # out is vq_decode's fresh tensor
    return out


def rvq_update(cfg: VQConfig, states: tuple[VQState, ...], inputs: list[torch.Tensor], codes: torch.Tensor,
               generator: torch.Generator) -> tuple[VQState, ...]:
    """One EMA step per stage, on the inputs it encoded (from rvq_encode) and its codes."""
    n = cfg.groups
    return tuple(vq_update(cfg, state, inputs[r], codes[:, r * n : (r + 1) * n], generator) for r, state in enumerate(states))
