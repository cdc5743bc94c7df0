"""Parameter constraints declared once, as data.

A `Constraint` is a rule (its English form is the middle of every error message) plus a
predicate plus a few values that break it. Config dataclasses declare a table
``{field: Constraint}``; `validate` checks a value against it and the rejection tests are
generated from the same table, so a rule cannot exist without its test.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, Callable, Iterable, Mapping

from dglsim.errors import InvalidArgument

__all__ = [
    "Constraint",
    "validate",
    "validate_fields",
    "int_at_least",
    "real_in",
    "positive_real",
    "rate",
    "real_at_least",
    "one_of",
    "boolean",
    "int_tuple",
    "optional",
    "renamed",
]


@dataclass(frozen=True)
class Constraint:
    rule: str  # completes "'name' of Owner must be <rule>, got <value>"
    test: Callable[[Any], bool]
    invalid_examples: tuple  # values that break the rule; the rejection tests use them

    def holds(self, value: Any) -> bool:
        try:
            return bool(self.test(value))
        except (TypeError, ValueError):
            return False


def validate(owner: str, name: str, value: Any, constraint: Constraint) -> None:
    if not constraint.holds(value):
        raise InvalidArgument(f"{name!r} of {owner} must be {constraint.rule}, got {_shown(value)}")


def _shown(value: Any, limit: int = 200) -> str:
    """The value as the message shows it: its repr, cut short for long sequences (a replayed trace)."""
    text = repr(value)
    if len(text) <= limit:
        return text
    size = f" ({len(value)} values)" if hasattr(value, "__len__") else ""
    return text[:limit] + "..." + size


def validate_fields(obj: Any, constraints: Mapping[str, Constraint], *, owner: str | None = None) -> None:
    """Every field of `obj` against its rule; `owner` names it in messages (default: its class)."""
    owner = owner or type(obj).__name__
    for name, constraint in constraints.items():
        validate(owner, name, getattr(obj, name), constraint)


def _is_int(v: Any) -> bool:
    return isinstance(v, Integral) and not isinstance(v, bool)


def _is_real(v: Any) -> bool:
    return isinstance(v, Real) and not isinstance(v, bool) and math.isfinite(v)


def int_at_least(low: int) -> Constraint:
    return Constraint(f"an int >= {low}", lambda v: _is_int(v) and v >= low, (low - 1, 1.5, "3", True))


def positive_real() -> Constraint:
    return Constraint("a finite real > 0", lambda v: _is_real(v) and v > 0, (0, -1.0, math.inf, math.nan, "1"))


def rate() -> Constraint:
    """A bandwidth in bytes/s: a real > 0, where inf means no limit."""
    return Constraint("a real > 0 (bytes/s; inf: no limit)", lambda v: isinstance(v, Real) and not isinstance(v, bool) and v > 0, (0, -1.0, math.nan, "fast", True))


def real_at_least(low: float) -> Constraint:
    return Constraint(f"a finite real >= {low:g}", lambda v: _is_real(v) and v >= low, (low - 1.0, math.inf, math.nan, "1", True))


def real_in(low: float, high: float, *, low_open: bool = False, high_open: bool = False) -> Constraint:
    left, right = ("(" if low_open else "["), (")" if high_open else "]")

    def test(v: Any) -> bool:
        if not _is_real(v):
            return False
        above = v > low if low_open else v >= low
        below = v < high if high_open else v <= high
        return above and below

    outside = (low - 1.0, high + 1.0) + ((low,) if low_open else ()) + ((high,) if high_open else ())
    return Constraint(f"a real in {left}{low}, {high}{right}", test, outside + (math.nan, "0.5"))


def one_of(choices: Iterable[Any]) -> Constraint:
    choices = tuple(choices)
    return Constraint(f"one of {list(choices)}", lambda v: v in choices, ("__not_a_choice__", None))


def boolean() -> Constraint:
    return Constraint("a bool", lambda v: isinstance(v, bool), (1, "true", None))


def int_tuple(*, low: int, increasing: bool = False) -> Constraint:
    """A tuple of ints >= low, strictly increasing when `increasing`."""

    def test(v: Any) -> bool:
        if not isinstance(v, tuple) or not all(_is_int(i) and i >= low for i in v):
            return False
        return not increasing or all(a < b for a, b in zip(v, v[1:]))

    rule = f"a tuple of ints >= {low}" + (", strictly increasing" if increasing else "")
    bad = ((low - 1,), [low + 1], (1.5,)) + (((low + 2, low + 1),) if increasing else ())
    return Constraint(rule, test, bad)


def optional(inner: Constraint, *, missing: str = "None") -> Constraint:
    """`inner` or None; `missing` names None as the user writes it ("absent" for a TOML key)."""
    return Constraint(
        f"{missing} or {inner.rule}",
        lambda v: v is None or inner.test(v),
        tuple(e for e in inner.invalid_examples if e is not None),
    )


def renamed(values: Mapping[str, Any], renames: Mapping[str, str], *, where: str) -> dict[str, Any]:
    """`values` with each key of `renames` (a former name) under its new name, and a warning
    naming both; an error when `values` gives both names. Former names are read for one release."""
    out = dict(values)
    for old, new in renames.items():
        if old in out:
            if new in out:
                raise InvalidArgument(f"'{old}' and '{new}' in {where} must not both be given ('{old}' is the former name of '{new}'), got both")
            warnings.warn(f"'{old}' in {where} is now '{new}'; the old name is read until the next release", FutureWarning, stacklevel=3)
            out[new] = out.pop(old)
    return out
