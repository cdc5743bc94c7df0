"""The auxiliary heads of the paper (Belilovsky et al. 2020, sec. 4 and appendix).

Each head maps a module's output (B, C, H, W) to class logits (B, classes). `width` is the
head's hidden width (the module's channel count when None).

- "cnn"    CNN-aux: two conv3x3+BN+ReLU layers, average-pool to 2x2, Linear.
- "mlp"    MLP-aux: average-pool to 2x2, three Linear+BN+ReLU, Linear.
- "mlp_sr" MLP-SR-aux: average-pool to a quarter of the resolution, three 1x1 conv+BN+ReLU,
           average-pool to 2x2, three Linear+BN+ReLU, Linear. Its cost barely depends on the
           module's resolution, which is why the paper uses it for cheap heads.
- "linear" global average pool and one Linear: the plain classifier, for reference.
- "authors_mlp" the head of the authors' buffer experiments (eugenium/DGL, buffer_experiments,
           `auxillary_classifier` with n_lin=0, mlp_layers=3): average-pool to 2x2, three
           Linear(4C, 4C) (with bias) + BN + ReLU, Linear. Its hidden width is the pooled
           input's 4C; `width` does not apply.
"""

from __future__ import annotations

from torch import nn

from dglsim.errors import InvalidArgument

HEADS = ("cnn", "mlp", "mlp_sr", "linear", "authors_mlp")


def _conv_bn_relu(cin: int, cout: int, kernel: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


def _mlp(cin: int, width: int, layers: int, classes: int, *, bias: bool = False) -> list[nn.Module]:
    out: list[nn.Module] = []
    for i in range(layers):
        out += [nn.Linear(cin if i == 0 else width, width, bias=bias), nn.BatchNorm1d(width), nn.ReLU(inplace=True)]
    out.append(nn.Linear(width if layers else cin, classes))
    return out


def make_head(kind: str, in_shape: tuple[int, int, int], classes: int, width: int | None = None) -> nn.Sequential:
    """The auxiliary head `kind` for inputs of shape (C, H, W)."""
    c, h, w = in_shape
    width = width or c
    if kind == "cnn":
        layers = _conv_bn_relu(c, width, 3) + _conv_bn_relu(width, width, 3)
        layers += [nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(4 * width, classes)]
    elif kind == "mlp":
        layers = [nn.AdaptiveAvgPool2d(2), nn.Flatten(), *_mlp(4 * c, width, 3, classes)]
    elif kind == "mlp_sr":
        layers = [nn.AdaptiveAvgPool2d((max(h // 4, 1), max(w // 4, 1)))]
        layers += _conv_bn_relu(c, width, 1) + _conv_bn_relu(width, width, 1) + _conv_bn_relu(width, width, 1)
        layers += [nn.AdaptiveAvgPool2d(2), nn.Flatten(), *_mlp(4 * width, width, 3, classes)]
    elif kind == "authors_mlp":
        layers = [nn.AdaptiveAvgPool2d(2), nn.Flatten(), *_mlp(4 * c, 4 * c, 3, classes, bias=True)]
    elif kind == "linear":
        layers = [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, classes)]
    else:
        raise InvalidArgument(f"'head' must be one of {list(HEADS)}, got {kind!r}")
    return nn.Sequential(*layers)
