import numpy as np
import pytest
from PIL import Image

from dglsim.data import load_imagenette
from dglsim.data.imagenette import WNIDS
from dglsim.errors import DataError, InvalidArgument


@pytest.mark.data
def test_npz_subset_sizes_and_balance(imagenette):
    train, val = imagenette
    assert len(train) == 4500 and len(val) == 1000 and train.shape == (3, 64, 64)
    assert (train.class_counts() == 450).all() and (val.class_counts() == 100).all()
    assert 20 < train.images.float().mean() < 235  # real pixels, neither blank nor saturated


def _write_folder(root, per_class, size=80):
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for c, wnid in enumerate(WNIDS):
            d = root / "imagenette2" / split / wnid
            d.mkdir(parents=True)
            for i in range(per_class):
                pixels = np.full((size, size, 3), 20 * c, dtype=np.uint8) + rng.integers(0, 5, (size, size, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(d / f"{wnid}_{i}.JPEG", quality=95)


def test_folder_layout_is_read_resized_and_labelled_by_wnid(tmp_path):
    _write_folder(tmp_path, per_class=2)
    train, val = load_imagenette(tmp_path, layout="folder", size=32)
    assert len(train) == 20 and len(val) == 20 and train.shape == (3, 32, 32)
    assert (train.class_counts() == 2).all()
    # class c was drawn at intensity ~20c (+ up to 4 noise, JPEG error a few levels)
    level = train.images.float().mean(dim=(1, 2, 3))
    np.testing.assert_allclose(level.numpy(), 20 * train.labels.numpy() + 2, atol=3)


def test_folder_with_wrong_classes_is_refused(tmp_path):
    _write_folder(tmp_path, per_class=1)
    (tmp_path / "imagenette2" / "train" / WNIDS[0]).rename(tmp_path / "imagenette2" / "train" / "n00000000")
    with pytest.raises(DataError, match="must hold exactly the class folders"):
        load_imagenette(tmp_path, layout="folder")


def test_absent_data_and_bad_layout_are_clear_errors(tmp_path):
    with pytest.raises(DataError, match="Imagenette not found"):
        load_imagenette(tmp_path)
    with pytest.raises(InvalidArgument, match="'layout' of load_imagenette"):
        load_imagenette(tmp_path, layout="zip")
