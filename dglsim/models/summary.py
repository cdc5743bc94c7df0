"""Parameter counts, FLOPs and activation sizes per module and per head.

FLOPs are multiply-accumulates (MACs) of convolutions and linear layers for one sample,
counted by forward hooks on a probe pass; normalisation and activations are left out (they are
a few percent and memory bound). The head share is head MACs / (stage MACs + head MACs).
Activations are the output elements of every leaf layer but views (Flatten, Identity) for one
sample: the tensors a training step writes and reads back, which the roofline's memory
traffic counts (`dglsim.cluster.roofline`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from dglsim.cluster.roofline import Workload
from dglsim.models.decoupled import DecoupledNet, eval_mode


@dataclass(frozen=True)
class ModuleSummary:
    module: int
    output_shape: tuple[int, ...]
    stage_params: int
    head_params: int
    stage_macs: int
    head_macs: int
    stage_activations: int = 0
    head_activations: int = 0

    @property
    def head_share(self) -> float:
        return self.head_macs / (self.stage_macs + self.head_macs)


_VIEWS = (nn.Flatten, nn.Identity)


def _count_macs(module: nn.Module, x: torch.Tensor) -> tuple[int, int, torch.Tensor]:
    """(MACs, activation elements, output) of `module` on the one-sample input `x`."""
    total, elements = 0, 0

    def hook(layer: nn.Module, inputs, output) -> None:
        nonlocal total, elements
        if isinstance(layer, nn.Conv2d):
            total += output[0].numel() * (layer.in_channels // layer.groups) * layer.kernel_size[0] * layer.kernel_size[1]
        elif isinstance(layer, nn.Linear):
            total += layer.in_features * layer.out_features
        if isinstance(output, torch.Tensor) and not isinstance(layer, _VIEWS):
            elements += output[0].numel()

    leaves = [m for m in module.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        out = module(x)
    finally:
        for h in handles:
            h.remove()
    return total, elements, out


def _params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def summarize(net: DecoupledNet) -> list[ModuleSummary]:
    rows = []
    with eval_mode(net), torch.no_grad():
        param = next(net.parameters())
        x = torch.zeros((1, *net.input_shape), device=param.device, dtype=param.dtype)
        for j, (stage, head) in enumerate(zip(net.stages, net.heads)):
            stage_macs, stage_acts, x = _count_macs(stage, x)
            head_macs, head_acts, _ = _count_macs(head, x)
            rows.append(ModuleSummary(j, tuple(x.shape[1:]), _params(stage), _params(head), stage_macs, head_macs, stage_acts, head_acts))
    return rows


def format_summary(rows: list[ModuleSummary]) -> str:
    """A fixed-width table, one line per module, plus totals."""
    lines = [f"{'module':>6} {'output':>14} {'params':>10} {'head params':>11} {'MMACs':>9} {'head MMACs':>10} {'head share':>10}"]
    for r in rows:
        lines.append(
            f"{r.module:>6} {'x'.join(map(str, r.output_shape)):>14} {r.stage_params:>10,} {r.head_params:>11,} "
            f"{r.stage_macs / 1e6:>9.2f} {r.head_macs / 1e6:>10.2f} {r.head_share:>10.1%}"
        )
    lines.append(
        f"{'total':>6} {'':>14} {sum(r.stage_params for r in rows):>10,} {sum(r.head_params for r in rows):>11,} "
        f"{sum(r.stage_macs for r in rows) / 1e6:>9.2f} {sum(r.head_macs for r in rows) / 1e6:>10.2f}"
    )
    return "\n".join(lines)


def workloads(net: DecoupledNet) -> list[Workload]:
    """Each module's per-sample workload (stage and head together), for roofline step times."""
    return [Workload(r.stage_macs + r.head_macs, r.stage_activations + r.head_activations, r.stage_params + r.head_params) for r in summarize(net)]


def stash_bytes_per_sample(stage: nn.Module, input_shape: tuple[int, ...], *, samples: int = 2) -> int:
    """Bytes per sample of what autograd saves in `stage`'s training forward for its backward
    (activations, masks, batch statistics), parameters excluded (a device holds them anyway):
    measured on a copy with saved-tensor hooks, each storage counted once."""
    import copy

    probe = copy.deepcopy(stage).train()
    params = {p.untyped_storage().data_ptr() for p in probe.parameters()}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    param = next(probe.parameters())
    x = torch.randn((samples, *input_shape), device=param.device, dtype=param.dtype, requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        probe(x)
    return -(-sum(seen.values()) // samples)
