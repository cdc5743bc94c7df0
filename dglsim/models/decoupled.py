"""A decoupled network: K modules, each with its own auxiliary head.

Module j maps the (detached) output of module j-1 to its own output; head j maps that output
to logits and defines module j's local loss. The last head is the network's classifier, so the
same object serves DGL, sequential greedy training and end-to-end backprop.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, ClassVar, Iterator

import torch
from torch import nn

from dglsim.constraints import Constraint, int_at_least, int_tuple, one_of, optional, validate_fields
from dglsim.errors import InvalidArgument
from dglsim.models import backbones
from dglsim.models.heads import HEADS, make_head

__all__ = ["DecoupledNet", "NetworkSpec", "build_network", "ARCHITECTURES", "even_splits", "eval_mode"]


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """Eval mode inside the block; afterwards every submodule gets back its own mode (a frozen,
    eval-mode prefix stays frozen even while the rest of the network is training)."""
    modes = {m: m.training for m in module.modules()}
    module.eval()
    try:
        yield module
    finally:
        for m, training in modes.items():
            m.training = training


class DecoupledNet(nn.Module):
    def __init__(self, stages: list[nn.Module], heads: list[nn.Module], input_shape: tuple[int, int, int]) -> None:
        super().__init__()
        if len(stages) != len(heads) or not stages:
            raise InvalidArgument(f"'heads' of DecoupledNet must be one per module ({len(stages)}), got {len(heads)}")
        self.stages = nn.ModuleList(stages)
        self.heads = nn.ModuleList(heads)
        self.input_shape = input_shape

    @property
    def k(self) -> int:
        return len(self.stages)

    def module_parameters(self, j: int) -> list[nn.Parameter]:
        """Parameters that module j's local loss trains: its stage and its head."""
        return [*self.stages[j].parameters(), *self.heads[j].parameters()]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """End-to-end logits: all stages, then the last head."""
        for stage in self.stages:
            x = stage(x)
        return self.heads[-1](x)

    def all_logits(self, x: torch.Tensor, *, links: list[Callable[[torch.Tensor], torch.Tensor]] | None = None) -> list[torch.Tensor]:
        """Every head's logits, one forward pass: [(B, classes)] * K. links[j], when given, maps
        module j's output before module j+1 takes it (e.g. a quantized link: encode, decode)."""
        out = []
        for j, (stage, head) in enumerate(zip(self.stages, self.heads)):
            x = stage(x)
            out.append(head(x))
            if links is not None and j < self.k - 1:
                x = links[j](x)
        return out

    def output_shapes(self) -> list[tuple[int, ...]]:
        """(C, H, W) of each module's output, from one probe forward in eval mode."""
        shapes = []
        with eval_mode(self), torch.no_grad():
            param = next(self.parameters())
            x = torch.zeros((1, *self.input_shape), device=param.device, dtype=param.dtype)
            for stage in self.stages:
                x = stage(x)
                shapes.append(tuple(x.shape[1:]))
        return shapes


_BACKBONES = {
    "authors_cnn": (backbones.authors_cnn, 128, None),
    "learning_curve_cnn": (backbones.learning_curve_cnn, 64, None),
    "authors_buffer_cnn": (backbones.authors_buffer_cnn, 32, None),
    "dni_cnn": (backbones.dni_cnn, 128, None),
    "vgg": (backbones.vgg, 64, 13),
    "resnet_cifar": (backbones.resnet_cifar, 16, 20),
    "resnet_imagenet": (backbones.resnet_imagenet, 64, 18),
}
ARCHITECTURES = tuple(_BACKBONES)


def even_splits(units: int, k: int) -> tuple[int, ...]:
    """Start indices of modules 1..k-1 when `units` units are split as evenly as possible."""
    return tuple(round(i * units / k) for i in range(1, k))


@dataclass(frozen=True)
class NetworkSpec:
    """What to build. width/depth None take the architecture's default (the paper's values).

    splits: the unit index where each module after the first starts (strictly increasing);
    None splits the units evenly into `k` modules.
    """

    arch: str = "authors_cnn"
    k: int = 6
    width: int | None = None
    depth: int | None = None
    splits: tuple[int, ...] | None = None
    head: str = "mlp_sr"
    head_width: int | None = None
    classes: int = 10
    input_shape: tuple[int, int, int] = (3, 32, 32)

    CONSTRAINTS: ClassVar[dict[str, Constraint]] = {
        "arch": one_of(ARCHITECTURES),
        "k": int_at_least(1),
        "width": optional(int_at_least(1)),
        "depth": optional(int_at_least(1)),
        "splits": optional(int_tuple(low=1, increasing=True)),
        "head": one_of(HEADS),
        "head_width": optional(int_at_least(1)),
        "classes": int_at_least(2),
        "input_shape": int_tuple(low=1),
    }

    def __post_init__(self) -> None:
        validate_fields(self, self.CONSTRAINTS)
        if self.splits is not None and len(self.splits) != self.k - 1:
            raise InvalidArgument(f"'splits' of NetworkSpec must hold k-1 = {self.k - 1} indices, got {self.splits!r}")


def build_network(spec: NetworkSpec, *, seed: int) -> DecoupledNet:
    """The decoupled network `spec`, initialised from `seed` (the global torch RNG is untouched)."""
    builder, default_width, default_depth = _BACKBONES[spec.arch]
    kwargs = {"width": spec.width or default_width}
    if default_depth is not None:
        kwargs["depth"] = spec.depth or default_depth
    elif spec.depth is not None:
        raise InvalidArgument(f"'depth' of NetworkSpec must be None for arch {spec.arch!r} (its depth is fixed), got {spec.depth!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        units = builder(spec.input_shape[0], **kwargs)
        if spec.k > len(units):
            raise InvalidArgument(f"'k' of NetworkSpec must be <= the {len(units)} units of {spec.arch}, got {spec.k}")
        splits = spec.splits if spec.splits is not None else even_splits(len(units), spec.k)
        if splits and splits[-1] >= len(units):
            raise InvalidArgument(f"'splits' of NetworkSpec must be < the {len(units)} units of {spec.arch}, got {splits!r}")
        bounds = (0, *splits, len(units))
        stages = [nn.Sequential(*units[a:b]) for a, b in zip(bounds, bounds[1:])]
        probe = DecoupledNet(stages, [nn.Identity()] * len(stages), spec.input_shape)
        heads = [make_head(spec.head, shape, spec.classes, spec.head_width) for shape in probe.output_shapes()]
        return DecoupledNet(stages, heads, spec.input_shape)
