"""Where dglsim looks for data: an explicit argument, else $DGLSIM_DATA, else a per-user cache."""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "DGLSIM_DATA"


def default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dglsim"


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data root: `root` when given, else ``$DGLSIM_DATA``, else ``~/.cache/dglsim``.

    Each dataset lives in its own folder below it (``cifar10/``, ``imagenette64/``, ``imagenette2/``).
    """
    if root is not None:
        path, what = Path(root).expanduser(), "'root' of the data loaders"
    else:
        env = os.environ.get(ENV_VAR)
        path, what = (Path(env).expanduser(), f"${ENV_VAR}") if env else (default_cache(), "the data cache")
    if path.exists() and not path.is_dir():
        from dglsim.errors import DataError

        raise DataError(f"{what} must be a folder holding cifar10/, imagenette64/ or imagenette2/, got the file {str(path)!r}")
    return path
