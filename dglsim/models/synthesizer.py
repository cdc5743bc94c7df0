"""DNI's gradient synthesizer (Jaderberg et al. 2017): predicts dL/dh from a module's output h.

The architecture of the paper's CIFAR-10 CNN (appendix C.1), also the authors' DNI comparison:
two convolutions of the output's channels with batch-norm and ReLU, then a convolution to the
output's channels, all resolution-preserving; the last layer starts at zero, so the first
synthetic gradients are zero (the module starts as if frozen). The paper's kernels are 5x5,
those of its CNN's layers; ours default to 3x3, those of the networks here (`kernel`). cDNI conditions on the
label: a linear map of the one-hot label is added to the first convolution's output.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dglsim.errors import InvalidArgument

__all__ = ["GradientSynthesizer"]


class GradientSynthesizer(nn.Module):
    def __init__(self, shape: tuple[int, ...], classes: int, *, conditioned: bool, kernel: int = 3) -> None:
        super().__init__()
        if len(shape) != 3:
            raise InvalidArgument(f"'shape' of GradientSynthesizer must be a module output (C, H, W), got {shape!r}")
        c = shape[0]
        self.classes, self.conditioned = classes, conditioned
        pad = kernel // 2
        self.first = nn.Conv2d(c, c, kernel, padding=pad)
        self.context = nn.Linear(classes, c) if conditioned else None
        self.bn1, self.hidden, self.bn2 = nn.BatchNorm2d(c), nn.Conv2d(c, c, kernel, padding=pad), nn.BatchNorm2d(c)
        self.out = nn.Conv2d(c, c, kernel, padding=pad)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def macs_per_sample(self, shape: tuple[int, int, int]) -> int:
        """Multiply-accumulates of one forward on one sample of `shape` (three convolutions, the label's map)."""
        c, h, w = shape
        conv = c * c * self.first.kernel_size[0] * self.first.kernel_size[1] * h * w
        return 3 * conv + (self.classes * c if self.context is not None else 0)

    def forward(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x = self.first(h)
        if self.context is not None:
            x = x + self.context(F.one_hot(y, self.classes).to(h.dtype))[:, :, None, None]
        x = self.hidden(F.relu(self.bn1(x)))
        return self.out(F.relu(self.bn2(x)))
