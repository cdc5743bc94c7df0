"""numba, where it imports: `jit` compiles a function to machine code, else leaves it as it is.

numba is a dependency of dglsim. A platform without a wheel of it still runs everything: the
same functions run interpreted (the same results, slower), and `available()` says which.
Compiled functions are cached next to their module, so a process compiles once per machine.
"""

from __future__ import annotations

from typing import Callable

try:
    import numba
except ImportError as exc:  # exercised by the fallback tests with numba hidden
    numba, _IMPORT_ERROR = None, exc
else:
    _IMPORT_ERROR = None

__all__ = ["jit", "inline", "available", "unavailable_reason", "typed_list"]


def available() -> bool:
    return numba is not None


def unavailable_reason() -> str:
    return f"numba cannot be imported ({_IMPORT_ERROR})"


def jit(fn: Callable) -> Callable:
    # error_model "numpy": a division by zero gives inf as in numpy, without a check per division
    return numba.njit(cache=True, nogil=True, error_model="numpy")(fn) if numba is not None else fn


def inline(fn: Callable) -> Callable:
    """A helper compiled into each caller (no call per use); as `jit` otherwise."""
    return numba.njit(inline="always", error_model="numpy")(fn) if numba is not None else fn


def typed_list(items: list) -> list:
    """A list a compiled function can index (numba's typed List), or the list itself."""
    return numba.typed.List(items) if numba is not None else list(items)
