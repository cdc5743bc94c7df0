"""An image classification set held in memory as uint8 tensors, and seeded class-balanced subsets."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from dglsim.errors import InvalidArgument


@dataclass(frozen=True)
class ImageSet:
    """Images and labels of one split.

    images: (N, C, H, W) uint8, labels: (N,) int64. `mean`/`std` are per-channel statistics in
    [0, 1] units used for normalisation (those of the dataset's training split).
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str = ""
    notes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise InvalidArgument(f"'images' of ImageSet must be a 4-d uint8 tensor, got {self.images.dtype} {tuple(self.images.shape)}")
        if self.labels.shape != (self.images.shape[0],):
            raise InvalidArgument(f"'labels' of ImageSet must have shape ({self.images.shape[0]},), got {tuple(self.labels.shape)}")

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.labels.numpy(), minlength=len(self.classes))

    def take(self, index: np.ndarray | torch.Tensor) -> "ImageSet":
        index = torch.as_tensor(index, dtype=torch.long)
        return ImageSet(self.images[index], self.labels[index], self.classes, self.mean, self.std, self.source, self.notes)

    def to(self, device: str | torch.device) -> "ImageSet":
        return ImageSet(self.images.to(device), self.labels.to(device), self.classes, self.mean, self.std, self.source, self.notes)


def balanced_subset(data: ImageSet, per_class: int, *, seed: int) -> ImageSet:
    """`per_class` images of every class, drawn without replacement with `seed`, kept in
    their original order (so a subset of a subset is stable and reproducible)."""
    counts = data.class_counts()
    if not isinstance(per_class, int) or isinstance(per_class, bool) or per_class < 1 or per_class > counts.min():
        raise InvalidArgument(
            f"'per_class' of balanced_subset must be an int in [1, {counts.min()}] (the smallest class of {data.source or 'the set'}), got {per_class!r}"
        )
    rng = np.random.default_rng(seed)
    labels = data.labels.numpy()
    chosen = [rng.choice(np.flatnonzero(labels == c), size=per_class, replace=False) for c in range(len(data.classes))]
    return data.take(np.sort(np.concatenate(chosen)))


def first_per_class(data: ImageSet, per_class: int) -> ImageSet:
    """The first `per_class` images of every class, in file order (the authors' subsets)."""
    counts = data.class_counts()
    if not isinstance(per_class, int) or isinstance(per_class, bool) or per_class < 1 or per_class > counts.min():
        raise InvalidArgument(
            f"'per_class' of first_per_class must be an int in [1, {counts.min()}] (the smallest class of {data.source or 'the set'}), got {per_class!r}"
        )
    labels = data.labels.numpy()
    chosen = [np.flatnonzero(labels == c)[:per_class] for c in range(len(data.classes))]
    return data.take(np.sort(np.concatenate(chosen)))


def first(data: ImageSet, n: int) -> ImageSet:
    """The first `n` images, in file order."""
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= len(data):
        raise InvalidArgument(f"'n' of first must be an int in [1, {len(data)}], got {n!r}")
    return data.take(np.arange(n))
