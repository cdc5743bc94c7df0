import os
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# "ci": fixed seed, bounded examples, no deadline (the CI machine is shared and noisy).
settings.register_profile("ci", max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=200, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _torch_threads():
    """A test that sets torch's thread count does not leak it into the tests after it."""
    import sys

    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch is not None else None
    yield
    if before is not None:
        torch.set_num_threads(before)


def _require(path: Path, what: str) -> None:
    if path.exists():
        return
    message = f"{what} not found at {path}; set DGLSIM_DATA to the folder that holds it"
    if os.environ.get("DGLSIM_REQUIRE_DATA") == "1":
        pytest.fail(message)  # CI sets this: missing data must not turn into silent skips
    pytest.skip(message)


@pytest.fixture(scope="session")
def data_root() -> Path:
    from dglsim.data import data_root as resolve

    return resolve()


@pytest.fixture(scope="session")
def cifar10(data_root):
    _require(data_root / "cifar10" / "cifar-10-batches-py", "CIFAR-10")
    from dglsim.data import LossyDataWarning, load_cifar10

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LossyDataWarning)
        return load_cifar10(download=False)


@pytest.fixture(scope="session")
def imagenette(data_root):
    _require(data_root / "imagenette64" / "imagenette64.npz", "Imagenette 64x64")
    from dglsim.data import load_imagenette

    return load_imagenette(layout="npz")
