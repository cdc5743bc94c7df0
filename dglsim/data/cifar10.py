"""CIFAR-10 from the official python-batch format, checked against a manifest of md5 sums.

Two copies are known: the official archive's files, and a reconstruction whose pixels were
decoded from JPEGs (PSNR about 30 dB against the originals; about 2-3 points lower accuracy).
The reconstruction loads with a one-line warning. Anything else is refused.
"""

from __future__ import annotations

import os
import pickle
import shutil
import tarfile
import tempfile
import urllib.request
import warnings
from pathlib import Path

import numpy as np
import torch

from dglsim.data.checksum import KnownDigest, identify, md5sum
from dglsim.data.dataset import ImageSet
from dglsim.data.root import ENV_VAR, data_root
from dglsim.errors import DataError

__all__ = ["load_cifar10", "CIFAR10_URL", "CIFAR10_ARCHIVE_MD5", "LossyDataWarning"]

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"
FOLDER = "cifar-10-batches-py"
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
# Per-channel statistics of the official training split, in [0, 1] units.
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)
# The normalisation of the authors' CIFAR scripts (eugenium/DGL): the training mean, and a
# standard deviation widely copied in CIFAR code that is not the training split's.
AUTHORS_MEAN, AUTHORS_STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)

_OFFICIAL = "official"
_JPEG = "jpeg-reconstruction"
MANIFEST: dict[str, tuple[KnownDigest, ...]] = {
    name: tuple(KnownDigest(md5, variant) for md5, variant in digests)
    for name, digests in {
        "batches.meta": [("5ff9c542aee3614f3951f8cda6e48888", _OFFICIAL)],  # identical in both copies
        "data_batch_1": [("c99cafc152244af753f735de768cd75f", _OFFICIAL), ("c5c3a76d415fbca7a02b763611403b59", _JPEG)],
        "data_batch_2": [("d4bba439e000b95fd0a9bffe97cbabec", _OFFICIAL), ("9b22551d02c20d7ab23c7f9ae9028e02", _JPEG)],
        "data_batch_3": [("54ebc095f3ab1f0389bbae665268c751", _OFFICIAL), ("d6c7a9f0aaa13cd1454339573cf62074", _JPEG)],
        "data_batch_4": [("634d18415352ddfa80567beed471001a", _OFFICIAL), ("fc69da8d051dddfa73c19c7c13be5bf7", _JPEG)],
        "data_batch_5": [("482c414d41f54cd18b22e5b47cb7c3cb", _OFFICIAL), ("23bf8ad4da7aa1ede1d5b74b2f9c8a60", _JPEG)],
        "test_batch": [("40351d587109b95175f43aff81a1287e", _OFFICIAL), ("d57de5ba3851a1106f57f2a43287d5c1", _JPEG)],
    }.items()
}
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))


class LossyDataWarning(UserWarning):
    """The data loaded are a lossy reconstruction of the official set."""


def _fix_hint(folder: Path) -> str:
    return (
        f"Delete {folder} to download the official archive again, or point ${ENV_VAR} (or the "
        f"'root' argument) at a folder holding cifar10/{FOLDER}/ with the official files."
    )


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path, "rb") as f:
        entry = pickle.load(f, encoding="bytes")
    images = np.asarray(entry[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)  # channel-planar
    return images, np.asarray(entry[b"labels"], dtype=np.int64)


def _download(folder: Path, url: str) -> None:
    """Fetch the official archive into `folder`'s parent, verify it, and unpack it."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent) as tmp:
        archive = Path(tmp) / "cifar-10-python.tar.gz"
        try:
            with urllib.request.urlopen(url, timeout=60) as response, open(archive, "wb") as out:
                shutil.copyfileobj(response, out)
        except OSError as exc:
            raise DataError(
                f"CIFAR-10 is not in {folder} and downloading {url} failed ({exc}). "
                f"Download it where a network is available and unpack it to {folder}, or set ${ENV_VAR}."
            ) from exc
        digest = md5sum(archive)
        if digest != CIFAR10_ARCHIVE_MD5:
            raise DataError(
                f"downloaded archive {url} has md5 {digest}, expected {CIFAR10_ARCHIVE_MD5} (official). "
                "It was discarded; retry, or download and unpack it by hand."
            )
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(tmp, filter="data")
        shutil.move(str(Path(tmp) / FOLDER), str(folder))


def load_cifar10(
    root: str | os.PathLike | None = None, *, download: bool = True, url: str = CIFAR10_URL
) -> tuple[ImageSet, ImageSet]:
    """(train, test) CIFAR-10 from ``<root>/cifar10/cifar-10-batches-py``.

    root: the data root (see `dglsim.data.data_root`). When the folder is absent and
    `download` is true, the official archive is fetched from `url` and verified.
    Every file must match the manifest; a corrupt or unknown file raises DataError.
    """
    folder = data_root(root) / "cifar10" / FOLDER
    if not folder.exists():
        if not download:
            raise DataError(f"CIFAR-10 is not in {folder} and download=False. {_fix_hint(folder)}")
        _download(folder, url)
    variants = {name: identify(folder / name, digests, fix=_fix_hint(folder)).variant for name, digests in MANIFEST.items()}
    batch_variants = {v for n, v in variants.items() if n != "batches.meta"}
    if len(batch_variants) > 1:
        raise DataError(f"{folder} mixes files of the official and the reconstructed CIFAR-10 ({variants}). {_fix_hint(folder)}")
    notes: tuple[str, ...] = ()
    if batch_variants == {_JPEG}:
        notes = ("pixels are JPEG-lossy (PSNR ~30 dB); expect 2-3 points lower accuracy than official CIFAR-10",)
        warnings.warn(f"CIFAR-10 in {folder}: {notes[0]}", LossyDataWarning, stacklevel=2)
    train = [_read_batch(folder / name) for name in TRAIN_FILES]
    test = _read_batch(folder / "test_batch")
    source = f"cifar10:{variants['data_batch_1']}"

    def image_set(images: np.ndarray, labels: np.ndarray) -> ImageSet:
        return ImageSet(torch.from_numpy(images), torch.from_numpy(labels), CLASSES, MEAN, STD, source, notes)

    return (
        image_set(np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train])),
        image_set(*test),
    )
