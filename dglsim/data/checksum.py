"""md5 manifests: a file is accepted only when its digest is a known one."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from dglsim.errors import DataError


@dataclass(frozen=True)
class KnownDigest:
    md5: str
    variant: str  # e.g. "official" or "jpeg-reconstruction"


def md5sum(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def identify(path: Path, known: tuple[KnownDigest, ...], *, fix: str) -> KnownDigest:
    """The manifest entry that `path` matches, or a DataError naming the file, its digest,
    the digests expected and `fix` (how to repair it)."""
    if not path.is_file():
        raise DataError(f"missing data file {path}. {fix}")
    digest = md5sum(path)
    for entry in known:
        if entry.md5 == digest:
            return entry
    expected = ", ".join(f"{k.md5} ({k.variant})" for k in known)
    raise DataError(
        f"data file {path} is corrupt or unknown: md5 {digest}, expected one of {expected}. {fix}"
    )
