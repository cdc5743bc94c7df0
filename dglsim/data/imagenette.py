"""Imagenette (10 ImageNet classes): the 64x64 npz subset, or the official imagenette2 folders.

The npz (``<root>/imagenette64/imagenette64.npz``) is checked against its known md5. The
folder layout (``<root>/imagenette2/{train,val}/<wnid>/*.JPEG``) is the user's own copy: its
class folders must be exactly the ten Imagenette wnids; images are resized to `size` with
area averaging (Pillow's BOX filter), as the npz was made.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from dglsim.data.checksum import KnownDigest, identify
from dglsim.data.dataset import ImageSet
from dglsim.data.root import ENV_VAR, data_root
from dglsim.errors import DataError, InvalidArgument

__all__ = ["load_imagenette", "WNIDS", "CLASS_NAMES"]

WNIDS = ("n01440764", "n02102040", "n02979186", "n03000684", "n03028079",
         "n03394916", "n03417042", "n03425413", "n03445777", "n03888257")
CLASS_NAMES = ("tench", "English springer", "cassette player", "chain saw", "church",
               "French horn", "garbage truck", "gas pump", "golf ball", "parachute")
NPZ_MANIFEST = (KnownDigest("6d25a5342fcf1a05e5d4d2296ba438ec", "imagenette64-subset"),)
# ImageNet per-channel statistics, in [0, 1] units.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def _from_arrays(x: np.ndarray, y: np.ndarray, source: str) -> ImageSet:
    images = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))  # NHWC -> NCHW
    return ImageSet(images, torch.from_numpy(y.astype(np.int64)), CLASS_NAMES, MEAN, STD, source)


def _load_npz(path: Path) -> tuple[ImageSet, ImageSet]:
    identify(path, NPZ_MANIFEST, fix=f"Replace {path} with the known imagenette64.npz, or set ${ENV_VAR}.")
    with np.load(path) as z:
        if tuple(str(w) for w in z["wnids"]) != WNIDS:
            raise DataError(f"{path}: 'wnids' {list(z['wnids'])} differ from the Imagenette classes {list(WNIDS)}")
        return _from_arrays(z["x_train"], z["y_train"], "imagenette64"), _from_arrays(z["x_val"], z["y_val"], "imagenette64")


def _load_split_folder(folder: Path, size: int) -> ImageSet:
    from PIL import Image  # Pillow comes with matplotlib; needed only for this layout

    found = sorted(p.name for p in folder.iterdir() if p.is_dir())
    if tuple(found) != tuple(sorted(WNIDS)):
        raise DataError(f"{folder} must hold exactly the class folders {list(WNIDS)}, found {found}")
    images, labels = [], []
    for label, wnid in enumerate(WNIDS):
        files = sorted(p for p in (folder / wnid).iterdir() if p.suffix.lower() in {".jpeg", ".jpg", ".png"})
        if not files:
            raise DataError(f"{folder / wnid} holds no JPEG or PNG images")
        for file in files:
            with Image.open(file) as im:
                images.append(np.asarray(im.convert("RGB").resize((size, size), Image.BOX)))
            labels.append(label)
    return _from_arrays(np.stack(images), np.asarray(labels), f"imagenette2@{size}")


def load_imagenette(
    root: str | os.PathLike | None = None, *, layout: str = "auto", size: int = 64
) -> tuple[ImageSet, ImageSet]:
    """(train, val) Imagenette.

    layout: "npz" (the 64x64 subset), "folder" (official imagenette2 class folders), or
    "auto" (the npz when present, else the folders). size: the side of images read from
    folders (the npz is 64x64 as made).
    """
    if layout not in ("auto", "npz", "folder"):
        raise InvalidArgument(f"'layout' of load_imagenette must be one of ['auto', 'npz', 'folder'], got {layout!r}")
    base = data_root(root)
    npz = base / "imagenette64" / "imagenette64.npz"
    folders = base / "imagenette2"
    if layout == "npz" or (layout == "auto" and npz.exists()):
        return _load_npz(npz)
    if not (folders / "train").is_dir() or not (folders / "val").is_dir():
        raise DataError(
            f"Imagenette not found: neither {npz} nor {folders}/train and {folders}/val exist. "
            f"Set ${ENV_VAR} (or 'root') to a folder holding imagenette64/imagenette64.npz or imagenette2/."
        )
    return _load_split_folder(folders / "train", size), _load_split_folder(folders / "val", size)
