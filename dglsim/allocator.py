"""Run the study process with an allocator that keeps CPU training's memory mapped.

CPU training allocates and frees large activation tensors every step. glibc's malloc serves
blocks above its mmap threshold with fresh mappings and unmaps them on free, so every step
faults its activations in again (on a 2-core machine: 17.9 M minor faults and 64 s of system
time in one delay_sweep). Two ways out, neither needs root:

- tcmalloc, preloaded when installed (Debian/Ubuntu: libtcmalloc-minimal4);
- otherwise glibc's own tunables (`GLIBC_TUNABLES`): an mmap threshold of 32 MiB (glibc's
  maximum, so activation tensors come from the heap), a trim threshold and top pad of 256 MiB
  (freed heap memory is kept for the next step instead of being returned to the OS).

The allocator changes speed only, never results. DGLSIM_ALLOCATOR=system keeps glibc's malloc
as it comes; =glibc_tuned skips tcmalloc. `benchmarks/bench_allocator.py` measures all three.
"""

from __future__ import annotations

import ctypes.util
import os
import sys
from pathlib import Path

ENV_VAR = "DGLSIM_ALLOCATOR"
CHOICES = ("tcmalloc", "glibc_tuned", "system")
GLIBC_TUNABLES = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=268435456:glibc.malloc.top_pad=268435456"
_CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4",
    "/usr/lib/aarch64-linux-gnu/libtcmalloc_minimal.so.4",
    "/usr/lib64/libtcmalloc_minimal.so.4",
    "/usr/lib/libtcmalloc_minimal.so.4",
)


def find_tcmalloc() -> str | None:
    for path in _CANDIDATES:
        if Path(path).exists():
            return path
    return ctypes.util.find_library("tcmalloc_minimal")


def current() -> str:
    """The allocator this process runs with: tcmalloc, jemalloc, glibc_tuned or system."""
    preload = os.environ.get("LD_PRELOAD", "")
    if "tcmalloc" in preload:
        return "tcmalloc"
    if "jemalloc" in preload:
        return "jemalloc"
    return "glibc_tuned" if os.environ.get("GLIBC_TUNABLES", "") == GLIBC_TUNABLES else "system"


def reexec_with_allocator(python_args: list[str]) -> None:
    """Replace this process by `python <python_args>` with tcmalloc preloaded (when installed) or
    else glibc's tunables set, unless the process already runs so or the user chose otherwise.
    Returns normally (and changes nothing) in those cases."""
    choice = os.environ.get(ENV_VAR, "tcmalloc")
    if choice not in CHOICES:
        raise SystemExit(f"error: {ENV_VAR} must be one of {list(CHOICES)}, got {choice!r}")
    if choice == "system" or current() != "system" or os.environ.get("GLIBC_TUNABLES"):
        return  # the user's choice, an allocator already preloaded, or tunables of the user's own
    lib = find_tcmalloc() if choice == "tcmalloc" else None
    if lib is not None:
        env = dict(os.environ, LD_PRELOAD=" ".join(filter(None, [lib, os.environ.get("LD_PRELOAD", "")])))
    else:
        env = dict(os.environ, GLIBC_TUNABLES=GLIBC_TUNABLES)
    os.execve(sys.executable, [sys.executable, *python_args], env)
