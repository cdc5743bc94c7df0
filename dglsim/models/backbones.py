"""Backbones as ordered lists of units; a decoupled network groups consecutive units into modules.

Every builder returns `list[nn.Module]`, each unit mapping (B, C, H, W) to (B, C', H', W').
Downsampling belongs to the unit after it (the paper's "max-pool before layer j"), so a module
boundary never falls between a pool and the layer it feeds.
"""

from __future__ import annotations

from torch import nn

from dglsim.errors import InvalidArgument


def _conv_unit(cin: int, cout: int, *, kernel: int = 3, pool: nn.Module | None = None, post_pool: nn.Module | None = None) -> nn.Sequential:
    layers: list[nn.Module] = [pool] if pool is not None else []
    layers += [nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
    if post_pool is not None:
        layers.append(post_pool)
    return nn.Sequential(*layers)


def _plan_units(plan: list[tuple[int, bool]], in_channels: int) -> list[nn.Module]:
    """plan: (channels, max-pool before) per conv3x3+BN+ReLU layer."""
    units, cin = [], in_channels
    for cout, pool in plan:
        units.append(_conv_unit(cin, cout, pool=nn.MaxPool2d(2) if pool else None))
        cin = cout
    return units


def authors_cnn(in_channels: int, width: int = 128) -> list[nn.Module]:
    """The authors' CIFAR CNN: 6 conv3x3+BN+ReLU layers, widths w-w-2w-2w-4w-4w (128-...-512),
    max-pool before layers 2 and 4 (0-indexed), resolutions 32-32-16-16-8-8 on CIFAR."""
    return _plan_units([(width, False), (width, False), (2 * width, True), (2 * width, False), (4 * width, True), (4 * width, False)], in_channels)


def learning_curve_cnn(in_channels: int, width: int = 64) -> list[nn.Module]:
    """The paper's 4-module learning-curve network: 64@32, pool+128@16, 128@16, pool+256@8."""
    return _plan_units([(width, False), (2 * width, True), (2 * width, False), (4 * width, True)], in_channels)


def authors_buffer_cnn(in_channels: int, width: int = 32) -> list[nn.Module]:
    """The network the authors' buffer experiment builds (eugenium/DGL, buffer_experiments,
    `--ncnn 4 --feature_size 32 --down [1,3] --ds-type maxpool`): w@32, w@32, pool+2w@16, 2w@16.
    Their loop adds block n+1 (pooled when n is in `down`) while it visits n = 0..2, so the
    listed 1 pools before the third block and the listed 3 is never reached."""
    return _plan_units([(width, False), (width, False), (2 * width, True), (2 * width, False)], in_channels)


def dni_cnn(in_channels: int, width: int = 128) -> list[nn.Module]:
    """The 3-layer CNN of the DNI comparison (Jaderberg et al. 2017, appendix C.1): three
    conv5x5 (128, resolution preserving)+BN+ReLU layers, the first followed by 3x3 max-pooling,
    the others by 3x3 average pooling. The paper leaves the pooling stride open; we take the
    authors' comparison code's (eugenium/DGL, dni_comparisons/: stride 3, PyTorch's default),
    which takes 32x32 inputs to 10x10, 3x3 and 1x1."""
    units, cin = [], in_channels
    for layer in range(3):
        pool = nn.MaxPool2d(3) if layer == 0 else nn.AvgPool2d(3)
        units.append(_conv_unit(cin, width, kernel=5, post_pool=pool))
        cin = width
    return units


_VGG = {
    11: [1, "M", 2, "M", 4, 4, "M", 8, 8, "M", 8, 8, "M"],
    13: [1, 1, "M", 2, 2, "M", 4, 4, "M", 8, 8, "M", 8, 8, "M"],
    16: [1, 1, "M", 2, 2, "M", 4, 4, 4, "M", 8, 8, 8, "M", 8, 8, 8, "M"],
    19: [1, 1, "M", 2, 2, "M", 4, 4, 4, 4, "M", 8, 8, 8, 8, "M", 8, 8, 8, 8, "M"],
}


def vgg(in_channels: int, depth: int = 13, width: int = 64) -> list[nn.Module]:
    """VGG-`depth` (11, 13, 16, 19) with BN; channel multiples of `width` (64 in the original).
    Each max-pool is attached before the next conv; the last one ends the last unit."""
    if depth not in _VGG:
        raise InvalidArgument(f"'depth' of vgg must be one of {sorted(_VGG)}, got {depth!r}")
    plan, pending_pool = [], False
    for item in _VGG[depth]:
        if item == "M":
            pending_pool = True
        else:
            plan.append((item * width, pending_pool))
            pending_pool = False
    units = _plan_units(plan, in_channels)
    units[-1].append(nn.MaxPool2d(2))
    return units


class BasicBlock(nn.Module):
    """The basic residual block (He et al. 2016): two conv3x3+BN, identity or 1x1 projection shortcut."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
        )
        self.shortcut = (
            nn.Identity() if stride == 1 and cin == cout
            else nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
        )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(self.body(x) + self.shortcut(x))


def _residual_stages(cin: int, widths: list[int], blocks: list[int], strides: list[int]) -> list[nn.Module]:
    units = []
    for width, count, stride in zip(widths, blocks, strides):
        for i in range(count):
            units.append(BasicBlock(cin, width, stride if i == 0 else 1))
            cin = width
    return units


def resnet_cifar(in_channels: int, depth: int = 20, width: int = 16) -> list[nn.Module]:
    """Basic-block ResNet for 32x32 (He et al. 2016, sec. 4.2): depth 6n+2 (20, 32, 56, 110),
    a conv3x3 stem, then three stages of n blocks at widths w, 2w, 4w (16-32-64)."""
    if not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
        raise InvalidArgument(f"'depth' of resnet_cifar must be an int 6n+2 >= 8 (20, 32, 56, 110), got {depth!r}")
    n = (depth - 2) // 6
    return [_conv_unit(in_channels, width)] + _residual_stages(width, [width, 2 * width, 4 * width], [n] * 3, [1, 2, 2])


_RESNET_IMAGENET = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3]}


def resnet_imagenet(in_channels: int, depth: int = 18, width: int = 64) -> list[nn.Module]:
    """ResNet-18/34 style for 64x64 inputs: a conv3x3 stride-2 stem in place of the 7x7 conv and
    max-pool of the 224x224 version (64 -> 32, as 224 -> 56 there), then four stages at
    widths w..8w with strides 1, 2, 2, 2 (32-16-8-4)."""
    if depth not in _RESNET_IMAGENET:
        raise InvalidArgument(f"'depth' of resnet_imagenet must be one of {sorted(_RESNET_IMAGENET)}, got {depth!r}")
    stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True))
    return [stem] + _residual_stages(width, [width, 2 * width, 4 * width, 8 * width], _RESNET_IMAGENET[depth], [1, 2, 2, 2])
