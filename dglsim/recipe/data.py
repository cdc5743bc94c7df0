"""A run's data: its train and test sets (subset, normalisation) and its two loaders."""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

from dglsim.data import BatchLoader, ImageSet, balanced_subset, data_root, first, first_per_class, load_cifar10, load_imagenette
from dglsim.data.cifar10 import AUTHORS_MEAN, AUTHORS_STD
from dglsim.errors import InvalidArgument
from dglsim.recipe.config import RunConfig

__all__ = ["run_data", "train_loader", "test_loader", "EVAL_BATCH"]

EVAL_BATCH = 500  # images per evaluation batch: the test set's pass, never the training batch
_LOADERS = {"cifar10": load_cifar10, "imagenette": load_imagenette}


@functools.cache
def _dataset(name: str, root: Path) -> tuple[ImageSet, ImageSet]:
    # Loaded once per process and data root: a study's runs share the same in-memory uint8
    # tensors, and a process whose $DGLSIM_DATA changes reads the new root (or its error).
    return _LOADERS[name](root)


def run_data(cfg: RunConfig) -> tuple[ImageSet, ImageSet]:
    """The run's train and test sets: the dataset, subsampled per class with `subset_seed`."""
    train_set, test_set = _dataset(cfg.dataset, data_root())
    if tuple(train_set.shape) != tuple(cfg.input_shape):
        raise InvalidArgument(f"'input_shape' of RunConfig must match the {cfg.dataset} images {train_set.shape}, got {cfg.input_shape}")
    if cfg.classes != len(train_set.classes):
        raise InvalidArgument(f"'classes' of RunConfig must be the {len(train_set.classes)} classes of {cfg.dataset}, got {cfg.classes}")
    if cfg.subset == "first":  # the authors' subsets: file order
        if cfg.train_per_class is not None:
            train_set = first_per_class(train_set, cfg.train_per_class)
        if cfg.test_per_class is not None:
            test_set = first(test_set, cfg.test_per_class * len(test_set.classes))
    else:
        if cfg.train_per_class is not None:
            train_set = balanced_subset(train_set, cfg.train_per_class, seed=cfg.subset_seed)
        if cfg.test_per_class is not None:
            test_set = balanced_subset(test_set, cfg.test_per_class, seed=cfg.subset_seed + 1)
    if cfg.normalization == "authors":
        train_set, test_set = (dataclasses.replace(s, mean=AUTHORS_MEAN, std=AUTHORS_STD) for s in (train_set, test_set))
    return train_set, test_set


def train_loader(cfg: RunConfig, train_set: ImageSet) -> BatchLoader:
    """Shuffled, augmented as the config says, seeded by the run's seed, whole batches only."""
    return BatchLoader(train_set, cfg.batch_size, shuffle=True, augment=cfg.augment, seed=cfg.seed, drop_last=True)


def test_loader(test_set: ImageSet) -> BatchLoader:
    return BatchLoader(test_set, EVAL_BATCH, shuffle=False, augment=False)
