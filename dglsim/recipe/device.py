"""The torch device a run's `device` key names, on this machine."""

from __future__ import annotations

import torch

from dglsim.errors import InvalidArgument

__all__ = ["resolve_device"]


def resolve_device(name: str) -> torch.device:
    """'auto': CUDA when available, else the CPU; a CUDA device that is absent is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InvalidArgument(f"'device' of RunConfig must be available on this machine, got {name!r} (no CUDA device); use 'auto' or 'cpu'")
    return device
