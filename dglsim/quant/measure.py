"""What quantization does to a link, measured on a probe batch.

- distortion: E||x - Q(x)||^2 over channel vectors, and relative to the total variance of x
  (the distortion of always sending the mean), so 0 is lossless and 1 is no information;
- code usage (vq): perplexity exp(H) of the codes on the probe (K when all codes are used
  equally) and the number of codes the probe never uses;
- gradient error: ||g(Q(x)) - g(x)|| and its ratio to ||g(x)||, where g is the gradient of the
  consumer's local loss with respect to its parameters (stage and head), computed on copies
  so that training state (batch-norm statistics) is untouched.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from dglsim.quant.codec import Codec, to_vectors

__all__ = ["distortion", "code_usage", "gradient_error", "link_measurements"]


def distortion(x: torch.Tensor, decoded: torch.Tensor) -> tuple[float, float]:
    """(mean squared error per channel vector, that error over the total variance of x)."""
    v, d = to_vectors(x.float()), to_vectors(decoded.float())
    mse = float((v - d).square().sum(1).mean())
    variance = float(v.var(0, unbiased=False).sum())
    return mse, (mse / variance if variance > 0 else float("nan"))


def code_usage(codes: torch.Tensor, k: int) -> tuple[float, int]:
    """(perplexity averaged over the columns of codes (n, R·N): stages and groups, codes unused
    by any column's share of the probe)."""
    codes = codes.long()
    perplexities, unused = [], 0
    for g in range(codes.shape[1]):
        p = torch.bincount(codes[:, g], minlength=k).float()
        unused += int((p == 0).sum())
        p = p[p > 0] / p.sum()
        perplexities.append(float(torch.exp(-(p * p.log()).sum())))
    return sum(perplexities) / len(perplexities), unused


def _local_gradient(stage: nn.Module, head: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    stage, head = copy.deepcopy(stage), copy.deepcopy(head)
    params = [*stage.parameters(), *head.parameters()]
    loss = nn.functional.cross_entropy(head(stage(x)), y)
    return torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params)])


def gradient_error(stage: nn.Module, head: nn.Module, x: torch.Tensor, decoded: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """(||g(Q(x)) - g(x)||, that over ||g(x)||) for the consumer's local loss."""
    exact = _local_gradient(stage, head, x, y)
    quantized = _local_gradient(stage, head, decoded, y)
    err = float((quantized - exact).norm())
    scale = float(exact.norm())
    return err, (err / scale if scale > 0 else float("nan"))


def link_measurements(codec: Codec, x: torch.Tensor, y: torch.Tensor, consumer: tuple[nn.Module, nn.Module]) -> dict[str, float]:
    """Every measurement of the link whose codec is `codec`, on the probe activation x with labels y.
    The probe is encoded with the codec's published codebook without teaching it anything."""
    item = codec.probe(x)
    decoded = codec.decode(item)
    mse, relative = distortion(x, decoded)
    grad_err, grad_rel = gradient_error(*consumer, x, decoded, y)
    out = {"distortion": mse, "relative_distortion": relative, "gradient_error": grad_err, "relative_gradient_error": grad_rel}
    if codec.cfg.family == "vq":
        out["perplexity"], out["unused_codes"] = code_usage(codec.codes_of(item), codec.cfg.vq.codes)
        out["codebook_drift"] = codec.drift[-1] if codec.drift else float("nan")
    return out
