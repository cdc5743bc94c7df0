import io
import shutil
import tarfile
import warnings

import numpy as np
import pytest

from dglsim.data import LossyDataWarning, load_cifar10
from dglsim.data.cifar10 import FOLDER, MANIFEST
from dglsim.errors import DataError

pytestmark = pytest.mark.data


def test_full_splits_have_the_official_sizes_and_class_balance(cifar10):
    train, test = cifar10
    assert len(train) == 50_000 and len(test) == 10_000
    assert train.shape == (3, 32, 32) and train.images.dtype.is_floating_point is False
    assert (train.class_counts() == 5_000).all() and (test.class_counts() == 1_000).all()


def test_pixels_are_real_images(cifar10):
    """The first test labels are the official ones, and pixel statistics are those of CIFAR-10
    (per-channel means within 0.01 of the official 0.491/0.482/0.447: JPEG changes them little)."""
    train, test = cifar10
    assert test.labels[:20].tolist() == [3, 8, 8, 0, 6, 6, 1, 6, 3, 1, 0, 9, 5, 7, 9, 8, 5, 7, 8, 6]
    means = train.images.float().mean(dim=(0, 2, 3)).numpy() / 255
    np.testing.assert_allclose(means, train.mean, atol=0.01)


def test_reconstructed_copy_warns_once_that_pixels_are_lossy(data_root):
    if not (data_root / "cifar10" / FOLDER).exists():
        pytest.skip("CIFAR-10 absent")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train, _ = load_cifar10(download=False)
    lossy = [w for w in caught if issubclass(w.category, LossyDataWarning)]
    assert len(lossy) == 1 and "\n" not in str(lossy[0].message)
    assert train.source == "cifar10:jpeg-reconstruction" and train.notes


@pytest.fixture
def cifar_copy(tmp_path, data_root):
    source = data_root / "cifar10" / FOLDER
    if not source.exists():
        pytest.skip("CIFAR-10 absent")
    target = tmp_path / "cifar10" / FOLDER
    shutil.copytree(source, target)
    return tmp_path


def test_corrupted_batch_is_refused_naming_file_and_expected_digests(cifar_copy):
    path = cifar_copy / "cifar10" / FOLDER / "data_batch_3"
    with open(path, "r+b") as f:
        f.seek(5_000_000)
        byte = f.read(1)
        f.seek(5_000_000)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(DataError) as info:
        load_cifar10(cifar_copy, download=False)
    message = str(info.value)
    assert "data_batch_3" in message and "corrupt or unknown" in message
    assert all(d.md5 in message for d in MANIFEST["data_batch_3"])
    assert "DGLSIM_DATA" in message  # says how to fix it


def test_missing_file_is_refused(cifar_copy):
    (cifar_copy / "cifar10" / FOLDER / "test_batch").unlink()
    with pytest.raises(DataError, match="missing data file .*test_batch"):
        load_cifar10(cifar_copy, download=False)


def test_absent_without_download_says_where_it_looked(tmp_path):
    with pytest.raises(DataError, match=f"not in {tmp_path}.*download=False"):
        load_cifar10(tmp_path, download=False)


def test_download_failure_is_a_clear_error(tmp_path):
    url = (tmp_path / "no-such-archive.tar.gz").as_uri()
    with pytest.raises(DataError, match="downloading .*no-such-archive.tar.gz failed"):
        load_cifar10(tmp_path / "root", url=url)
    assert not (tmp_path / "root" / "cifar10" / FOLDER).exists()


def test_downloaded_archive_with_wrong_checksum_is_discarded(tmp_path):
    archive = tmp_path / "fake.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo(f"{FOLDER}/batches.meta")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    with pytest.raises(DataError, match="expected c58f30108f718f92721af3b95e74349a"):
        load_cifar10(tmp_path / "root", url=archive.as_uri())
    assert not (tmp_path / "root" / "cifar10" / FOLDER).exists()
    assert list((tmp_path / "root" / "cifar10").iterdir()) == []  # nothing half-extracted left behind
