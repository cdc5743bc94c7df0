"""Run the study process under tcmalloc when the machine has it.

glibc's malloc returns large activation buffers to the OS and faults them in again on every
step; on the 2-core CPU machines we measured 12 s of system time against 0.6 s with tcmalloc,
enough to make DGL look 15% slower than backprop. The allocator changes speed only, never
results. Set DGLSIM_ALLOCATOR=system to keep glibc's.
"""

from __future__ import annotations

import ctypes.util
import os
import sys
from pathlib import Path

ENV_VAR = "DGLSIM_ALLOCATOR"
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


def reexec_under_tcmalloc(python_args: list[str]) -> None:
    """Replace this process by `python <python_args>` with tcmalloc preloaded, when tcmalloc
    exists, is not loaded yet and the user has not asked for the system allocator.
    Returns normally (and changes nothing) otherwise."""
    if os.environ.get(ENV_VAR, "tcmalloc") == "system" or "tcmalloc" in os.environ.get("LD_PRELOAD", ""):
        return
    lib = find_tcmalloc()
    if lib is None:
        print("dglsim: tcmalloc not found, using the system allocator (install libtcmalloc-minimal4 for faster CPU training)", file=sys.stderr)
        return
    env = dict(os.environ, LD_PRELOAD=" ".join(filter(None, [lib, os.environ.get("LD_PRELOAD", "")])))
    env[ENV_VAR] = "tcmalloc"
    os.execve(sys.executable, [sys.executable, *python_args], env)
