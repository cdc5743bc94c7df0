"""Delay models: how long a compute step or a link transfer takes, in simulated seconds.

A model is a description (immutable, comparable); `stream(rng)` gives a per-worker source of
durations drawn in blocks from that worker's own numpy Generator, so workers never share
randomness and sampling costs one numpy call per block.

- `Distribution`: any scipy.stats continuous distribution with non-negative support, by name.
- `constant`, `exponential`, `gamma`, `lognormal`, `pareto`: by mean (and coefficient of variation).
- `Straggler`: with probability q a duration is multiplied by `factor`.
- `Replay`: measured durations, in order (from a list or a file).
- `Scaled`: any model times a factor (a slowed device).
- `AtLeast`: any model, never below a floor (an injected delay cannot make a step faster than
  its kernels).
"""

from __future__ import annotations

import functools
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Iterator

import numpy as np
from scipy import stats

from dglsim.constraints import Constraint, boolean, positive_real, real_at_least, real_in, validate_fields
from dglsim.errors import InvalidArgument

__all__ = [
    "DelayModel", "Distribution", "Constant", "Straggler", "Replay", "Scaled", "AtLeast",
    "constant", "exponential", "gamma", "lognormal", "pareto", "delay_from_spec", "DelayStream",
]

BLOCK = 1024


class DelayModel(ABC):
    @property
    @abstractmethod
    def mean(self) -> float:
        """Expected duration (inf when it does not exist)."""

    @abstractmethod
    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """`size` independent durations (float64, >= 0)."""

    def stream(self, rng: np.random.Generator, block: int = BLOCK) -> "DelayStream":
        return DelayStream(self._blocks(rng, block))

    def _blocks(self, rng: np.random.Generator, block: int) -> Iterator[np.ndarray]:
        while True:
            yield self.sample(rng, block)

    def scaled(self, factor: float) -> "DelayModel":
        return self if factor == 1.0 else Scaled(self, factor)


_MODEL = Constraint("a delay model", lambda v: isinstance(v, DelayModel), (1.0, "constant", None))


def _durations(values: Any) -> bool:
    return (isinstance(values, tuple) and len(values) > 0
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0 for v in values))


class DelayStream:
    """Draws one duration at a time from blocks: `stream()` -> float; `take(n)` -> the next n."""

    __slots__ = ("_blocks", "_block", "_buf", "_i")

    def __init__(self, blocks: Iterator[np.ndarray]) -> None:
        self._blocks, self._block, self._buf, self._i = blocks, np.zeros(0), [], 0

    def _refill(self) -> None:
        self._block, self._buf, self._i = np.asarray(next(self._blocks), dtype=float), None, 0

    def __call__(self) -> float:
        if self._i == len(self._block):
            self._refill()
        if self._buf is None:  # Python floats: one list per block is the hot path of the engine
            self._buf = self._block.tolist()
        value = self._buf[self._i]
        self._i += 1
        return value

    def take(self, n: int) -> np.ndarray:
        """The next `n` durations: the same values, in the same order, as `n` calls."""
        out = np.empty(n)
        filled = 0
        while filled < n:
            if self._i == len(self._block):
                self._refill()
            count = min(n - filled, len(self._block) - self._i)
            out[filled : filled + count] = self._block[self._i : self._i + count]
            self._i += count
            filled += count
        return out


@dataclass(frozen=True)
class Constant(DelayModel):
    value: float

    CONSTRAINTS: ClassVar[dict[str, Constraint]] = {"value": real_at_least(0)}

    def __post_init__(self) -> None:
        validate_fields(self, self.CONSTRAINTS)

    @property
    def mean(self) -> float:
        return float(self.value)

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return np.full(size, float(self.value))


@functools.lru_cache(maxsize=256)
def _frozen(name: str, params: tuple[tuple[str, float], ...]):
    """scipy's frozen distribution, built once per (name, parameters): freezing re-instantiates
    the distribution class (and formats its docstring), milliseconds each, once per stream of
    thousands of replicas otherwise. Sharing it is safe: every draw passes its own generator."""
    return getattr(stats, name)(**dict(params))


@dataclass(frozen=True)
class Distribution(DelayModel):
    """scipy.stats distribution `name` with keyword parameters, e.g. Distribution("lognorm", (("s", 0.5), ("scale", 0.01)))."""

    name: str
    params: tuple[tuple[str, float], ...]

    def __post_init__(self) -> None:
        dist = getattr(stats, self.name, None)
        if not isinstance(dist, stats.rv_continuous):
            raise InvalidArgument(f"'dist' of a delay must name a scipy.stats continuous distribution, got {self.name!r}")
        try:
            frozen = _frozen(self.name, self.params)
            low = frozen.support()[0]
        except (TypeError, ValueError) as exc:
            raise InvalidArgument(f"parameters {dict(self.params)} of delay dist {self.name!r} are not accepted by scipy.stats: {exc}") from exc
        if not low >= 0:  # NaN support means invalid parameters
            raise InvalidArgument(f"delay dist {self.name!r} with {dict(self.params)} must have support in [0, inf) (durations), got lower bound {low}")

    @property
    def frozen(self):
        return _frozen(self.name, self.params)

    @property
    def mean(self) -> float:
        return float(self.frozen.mean())

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return np.asarray(self.frozen.rvs(size=size, random_state=rng), dtype=float)

    def _blocks(self, rng: np.random.Generator, block: int) -> Iterator[np.ndarray]:
        frozen = self.frozen  # freeze once per stream, not per block
        while True:
            yield np.asarray(frozen.rvs(size=block, random_state=rng), dtype=float)


@dataclass(frozen=True)
class Scaled(DelayModel):
    base: DelayModel
    factor: float

    CONSTRAINTS: ClassVar[dict[str, Constraint]] = {"base": _MODEL, "factor": positive_real()}

    def __post_init__(self) -> None:
        validate_fields(self, self.CONSTRAINTS)

    @property
    def mean(self) -> float:
        return self.base.mean * self.factor

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return self.base.sample(rng, size) * self.factor

    def _blocks(self, rng: np.random.Generator, block: int) -> Iterator[np.ndarray]:
        for values in self.base._blocks(rng, block):
            yield values * self.factor


@dataclass(frozen=True)
class Straggler(DelayModel):
    """With probability `q` a duration of `base` is multiplied by `factor` (a straggling step)."""

    base: DelayModel
    q: float
    factor: float

    CONSTRAINTS: ClassVar[dict[str, Constraint]] = {"base": _MODEL, "q": real_in(0.0, 1.0), "factor": real_at_least(1)}

    def __post_init__(self) -> None:
        validate_fields(self, self.CONSTRAINTS)

    @property
    def mean(self) -> float:
        return self.base.mean * (1 + self.q * (self.factor - 1))

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        values = self.base.sample(rng, size)
        return np.where(rng.random(size) < self.q, values * self.factor, values)

    def _blocks(self, rng: np.random.Generator, block: int) -> Iterator[np.ndarray]:
        for values in self.base._blocks(rng, block):
            yield np.where(rng.random(block) < self.q, values * self.factor, values)


@dataclass(frozen=True)
class Replay(DelayModel):
    """Measured durations replayed in order; `cycle` restarts at the end, else running out is an error."""

    values: tuple[float, ...]
    cycle: bool = True

    CONSTRAINTS: ClassVar[dict[str, Constraint]] = {
        "values": Constraint("a non-empty tuple of finite reals >= 0", _durations, ((), (1.0, -0.5), (math.nan,), [1.0], ("x",), (True,))),
        "cycle": boolean(),
    }

    def __post_init__(self) -> None:
        validate_fields(self, self.CONSTRAINTS)

    @classmethod
    def from_file(cls, path: str | Path, *, cycle: bool = True) -> "Replay":
        """One duration per line (blank lines and '#' comments ignored)."""
        try:
            return cls(tuple(np.loadtxt(path, dtype=float, comments="#", ndmin=1).tolist()), cycle)
        except (OSError, ValueError) as exc:
            raise InvalidArgument(f"'file' of replay delay must be a readable file of numbers, got {str(path)!r}: {exc}") from exc

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Independent draws from the empirical distribution (for uses that need i.i.d. values)."""
        return rng.choice(np.asarray(self.values, dtype=float), size=size)

    def _blocks(self, rng: np.random.Generator, block: int) -> Iterator[np.ndarray]:
        values = np.asarray(self.values, dtype=float)
        while True:
            yield values
            if not self.cycle:
                raise InvalidArgument(f"replay delay ran out after its {len(values)} values (set cycle = true to restart)")


@dataclass(frozen=True)
class AtLeast(DelayModel):
    """max(floor, a draw of `base`)."""

    base: DelayModel
    floor: float

    CONSTRAINTS: ClassVar[dict[str, Constraint]] = {"base": _MODEL, "floor": real_at_least(0)}

    def __post_init__(self) -> None:
        validate_fields(self, self.CONSTRAINTS)

    @property
    def mean(self) -> float:
        return _mean_at_least(self.base, float(self.floor))

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return np.maximum(self.base.sample(rng, size), self.floor)

    def _blocks(self, rng: np.random.Generator, block: int) -> Iterator[np.ndarray]:
        for values in self.base._blocks(rng, block):
            yield np.maximum(values, self.floor)


def _mean_at_least(model: DelayModel, c: float) -> float:
    """E[max(c, X)] for X ~ model, exactly: c + E[(X - c)+], by the model's structure."""
    if isinstance(model, Constant):
        return max(c, float(model.value))
    if isinstance(model, Scaled):  # max(c, aX) = a max(c/a, X)
        return model.factor * _mean_at_least(model.base, c / model.factor)
    if isinstance(model, Straggler):  # a mixture of X and factor * X
        return (1 - model.q) * _mean_at_least(model.base, c) + model.q * model.factor * _mean_at_least(model.base, c / model.factor)
    if isinstance(model, Replay):
        return float(np.maximum(np.asarray(model.values, dtype=float), c).mean())
    if isinstance(model, AtLeast):
        return _mean_at_least(model.base, max(c, float(model.floor)))
    frozen = model.frozen  # Distribution: c P(X <= c) + E[X; X > c]
    return float(c * frozen.cdf(c) + frozen.expect(lambda x: x, lb=c))


def constant(mean: float) -> Constant:
    return Constant(float(mean))


def _check_mean_cv(kind: str, mean: float, cv: float | None) -> None:
    if not (isinstance(mean, (int, float)) and mean > 0 and math.isfinite(mean)):
        raise InvalidArgument(f"'mean' of {kind} delay must be a finite real > 0, got {mean!r}")
    if cv is not None and not (isinstance(cv, (int, float)) and cv > 0 and math.isfinite(cv)):
        raise InvalidArgument(f"'cv' of {kind} delay must be a finite real > 0, got {cv!r}")


def exponential(mean: float) -> Distribution:
    _check_mean_cv("exponential", mean, None)
    return Distribution("expon", (("scale", float(mean)),))


def gamma(mean: float, cv: float) -> Distribution:
    _check_mean_cv("gamma", mean, cv)
    return Distribution("gamma", (("a", 1 / cv**2), ("scale", mean * cv**2)))


def lognormal(mean: float, cv: float) -> Distribution:
    _check_mean_cv("lognormal", mean, cv)
    s2 = math.log1p(cv**2)
    return Distribution("lognorm", (("s", math.sqrt(s2)), ("scale", mean * math.exp(-s2 / 2))))


def pareto(mean: float, cv: float) -> Distribution:
    """Classic Pareto with shape b > 2 solving cv^2 = 1 / (b (b - 2)) and minimum mean (b - 1) / b."""
    _check_mean_cv("pareto", mean, cv)
    b = 1 + math.sqrt(1 + 1 / cv**2)
    return Distribution("pareto", (("b", b), ("scale", mean * (b - 1) / b)))


_BY_MEAN = {"exponential": (exponential, ("mean",)), "gamma": (gamma, ("mean", "cv")), "lognormal": (lognormal, ("mean", "cv")), "pareto": (pareto, ("mean", "cv"))}
KINDS = ("constant", *_BY_MEAN, "straggler", "replay")


def _number(value: Any, where: str) -> float:
    """`value` as a float, or an InvalidArgument naming `where` (bool and strings are refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidArgument(f"{where} must be a number, got {value!r}")
    return float(value)


def delay_from_spec(spec: Any, *, where: str) -> DelayModel:
    """A delay model from its spec form:

    a number (constant), {dist = "lognorm", s = 0.5, scale = 0.01} (scipy.stats),
    {kind = "constant", value = 0.01}, {kind = "gamma", mean = 0.01, cv = 0.3} (also
    exponential, lognormal, pareto), {kind = "straggler", base = {...}, q = 0.05, factor = 5},
    {kind = "replay", values = [...]} or {kind = "replay", file = "times.txt", cycle = true}.
    `where` names the spec key in error messages.
    """
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return Constant(float(spec))
    if not isinstance(spec, dict):
        raise InvalidArgument(f"{where!r} must be a number or a delay table, got {spec!r}")
    spec = dict(spec)
    if "dist" in spec:
        name = spec.pop("dist")
        return Distribution(name, tuple(sorted((k, _number(v, f"{where}.{k}")) for k, v in spec.items())))
    kind = spec.pop("kind", None)
    if kind not in KINDS:
        raise InvalidArgument(f"'kind' of {where} must be one of {list(KINDS)} (or give 'dist'), got {kind!r}")

    def take(*names: str, optional: tuple[str, ...] = ()) -> dict:
        missing = [n for n in names if n not in spec]
        extra = sorted(set(spec) - set(names) - set(optional))
        if missing or extra:
            raise InvalidArgument(f"{where} of kind {kind!r} takes keys {list(names) + list(optional)}; missing {missing}, unknown {extra}")
        return spec

    if kind == "constant":
        return Constant(take("value")["value"])
    if kind in _BY_MEAN:
        fn, names = _BY_MEAN[kind]
        return fn(**take(*names))
    if kind == "straggler":
        args = take("base", "q", "factor")
        return Straggler(delay_from_spec(args["base"], where=f"{where}.base"), args["q"], args["factor"])
    args = take(optional=("values", "file", "cycle"))
    if ("values" in args) == ("file" in args):
        raise InvalidArgument(f"{where} of kind 'replay' must give exactly one of 'values' or 'file', got {sorted(args)}")
    cycle = args.get("cycle", True)
    if "values" in args:
        values = args["values"]
        if not isinstance(values, list):
            raise InvalidArgument(f"{where}.values must be a list of numbers, got {values!r}")
        return Replay(tuple(_number(v, f"{where}.values[{i}]") for i, v in enumerate(values)), cycle)
    return Replay.from_file(args["file"], cycle=cycle)
