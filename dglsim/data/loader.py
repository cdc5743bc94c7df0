"""Mini-batches with augmentation and normalisation done on whole batches.

Images stay uint8 in memory (on the training device when it is a GPU); a batch is gathered,
randomly cropped with zero padding and flipped by index arithmetic over the whole batch, then
converted to normalised float32. No per-image Python work, so the data path is never the
bottleneck (see benchmarks/bench_data_path.py).
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from dglsim.data.dataset import ImageSet
from dglsim.data.synthetic import FeatureSet
from dglsim.errors import InvalidArgument

__all__ = ["BatchLoader", "random_crop_flip", "normalize"]


def _generator(seed: int, epoch: int) -> torch.Generator:
    # One independent stream per (seed, epoch): an epoch's batches do not depend on how many
    # epochs ran before it in this process, so a resumed run sees the same data.
    state = np.random.SeedSequence([seed, epoch]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state))


def random_crop_flip(images: torch.Tensor, padding: int, gen: torch.Generator) -> torch.Tensor:
    """Random crop of the zero-padded images back to their size, then a random horizontal flip.

    images: (B, C, H, W) any dtype. Offsets and flips are drawn from `gen` (CPU) per image.
    """
    b, c, h, w = images.shape
    out = images
    if padding > 0:
        padded = torch.nn.functional.pad(images, (padding, padding, padding, padding))
        dy = torch.randint(0, 2 * padding + 1, (b,), generator=gen).to(images.device)
        dx = torch.randint(0, 2 * padding + 1, (b,), generator=gen).to(images.device)
        rows = (dy[:, None] + torch.arange(h, device=images.device))[:, None, :, None]  # (B,1,H,1)
        cols = (dx[:, None] + torch.arange(w, device=images.device))[:, None, None, :]  # (B,1,1,W)
        batch = torch.arange(b, device=images.device)[:, None, None, None]
        chan = torch.arange(c, device=images.device)[None, :, None, None]
        out = padded[batch, chan, rows, cols]
    flip = (torch.rand(b, generator=gen) < 0.5).to(images.device)[:, None, None, None]
    return torch.where(flip, out.flip(3), out)


def normalize(images: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """uint8 (B, C, H, W) -> float32 with per-channel mean 0 and std 1 under the given statistics."""
    m = torch.tensor(mean, device=images.device).mul_(255.0)[None, :, None, None]
    s = torch.tensor(std, device=images.device).mul_(255.0).reciprocal_()[None, :, None, None]
    return (images.float() - m).mul_(s)


class BatchLoader:
    """Iterates (x, y) mini-batches of an ImageSet or FeatureSet.

    shuffle: a fresh permutation each epoch, drawn from (seed, epoch).
    augment: random crop (padding `pad`) and horizontal flip; images only.
    drop_last: skip a final partial batch (the training default, so every step sees
    `batch_size` samples; evaluation keeps it).
    """

    def __init__(
        self,
        data: ImageSet | FeatureSet,
        batch_size: int,
        *,
        shuffle: bool,
        augment: bool,
        seed: int = 0,
        drop_last: bool = False,
        pad: int = 4,
    ) -> None:
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise InvalidArgument(f"'batch_size' of BatchLoader must be an int >= 1, got {batch_size!r}")
        if augment and not isinstance(data, ImageSet):
            raise InvalidArgument(f"'augment' of BatchLoader must be False for {type(data).__name__} (only images are augmented), got True")
        if drop_last and batch_size > len(data):
            raise InvalidArgument(f"'batch_size' of BatchLoader must be <= the {len(data)} samples when drop_last=True, got {batch_size}")
        self.data, self.batch_size, self.shuffle, self.augment = data, batch_size, shuffle, augment
        self.seed, self.drop_last, self.pad = seed, drop_last, pad

    def __len__(self) -> int:
        n = len(self.data)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def forever(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Epoch 0, then 1, 2, ...: for modules that count their own epochs (and, in paper mode,
        keep forwarding past them)."""
        epoch = 0
        while True:
            yield from self.epoch(epoch)
            epoch += 1

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        gen = _generator(self.seed, epoch)
        n = len(self.data)
        order = torch.randperm(n, generator=gen) if self.shuffle else torch.arange(n)
        for i in range(len(self)):
            index = order[i * self.batch_size : (i + 1) * self.batch_size]
            if isinstance(self.data, FeatureSet):
                idx = index.to(self.data.features.device)
                yield self.data.features[idx], self.data.labels[idx]
                continue
            idx = index.to(self.data.images.device)
            images = self.data.images[idx]
            if self.augment:
                images = random_crop_flip(images, self.pad, gen)
            yield normalize(images, self.data.mean, self.data.std), self.data.labels[idx]
