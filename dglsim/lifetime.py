"""Child processes that never outlive their parent: study pool workers and distributed ranks.

`die_with_parent` asks the kernel (Linux's PR_SET_PDEATHSIG) to send SIGTERM to the calling
process when its parent dies, however the parent dies (SIGKILL included); a process group would
not do, since a killed parent cannot signal it. The parent may already be gone when a child asks,
so the child then compares its parent's PID with the one it was started by.
"""

from __future__ import annotations

import os
import signal
import sys

__all__ = ["die_with_parent"]

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int | None = None) -> bool:
    """SIGTERM this process when its parent dies; at once when `parent_pid` (the PID that started
    it) is no longer its parent. False where the platform has no such request (not Linux)."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
        return False
    if parent_pid is not None and os.getppid() != parent_pid:  # the parent died before the request
        os.kill(os.getpid(), signal.SIGTERM)
    return True
