"""Study configs: `studies/NAME.toml` -> validated, frozen RunConfigs (one per grid point and seed).

A study file has a `[base]` table of run settings, a `[grid]` table whose lists are the axes
swept, and `[profiles.smoke|default|paper]` tables that override the base. `--set key=value`
overrides any key last. Every key is a field of `RunConfig`; an unknown key or a bad value is
an InvalidArgument naming the key, the rule and the value, raised before any run starts.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from dglsim.constraints import Constraint, boolean, int_at_least, one_of, optional, validate_fields
from dglsim.errors import InvalidArgument
from dglsim.models.decoupled import NetworkSpec
from dglsim.train.methods import METHODS, TrainConfig
from dglsim.train.optim import OptimConfig

__all__ = ["RunConfig", "StudySpec", "PROFILES", "load_study", "parse_assignment", "studies_dir", "list_studies"]

PROFILES = ("smoke", "default", "paper")
DATASETS = ("cifar10", "imagenette")
_NETWORK_KEYS = tuple(f.name for f in dataclasses.fields(NetworkSpec))
_OPTIM_KEYS = tuple(f.name for f in dataclasses.fields(OptimConfig))
_TRAIN_KEYS = ("epochs", "batch_size", "eval_every")


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines one run. Stored as given; its hash keys the results store."""

    method: str = "dgl"
    seed: int = 0
    dataset: str = "cifar10"
    train_per_class: int | None = None  # None: the whole training split
    test_per_class: int | None = None
    subset_seed: int = 0  # which subset; fixed across seeds so seeds vary only the training
    augment: bool = True
    device: str = "auto"  # "auto": cuda when available, else cpu
    # network (NetworkSpec) and training (TrainConfig / OptimConfig): flat, so that every key
    # can be set with --set key=value; the defaults are those of the parts.
    arch: str = NetworkSpec.arch
    k: int = NetworkSpec.k
    width: int | None = NetworkSpec.width
    depth: int | None = NetworkSpec.depth
    splits: tuple[int, ...] | None = NetworkSpec.splits
    head: str = NetworkSpec.head
    head_width: int | None = NetworkSpec.head_width
    classes: int = NetworkSpec.classes
    input_shape: tuple[int, int, int] = NetworkSpec.input_shape
    epochs: int = TrainConfig.epochs
    batch_size: int = TrainConfig.batch_size
    eval_every: int = TrainConfig.eval_every
    lr: float = OptimConfig.lr
    momentum: float = OptimConfig.momentum
    weight_decay: float = OptimConfig.weight_decay
    lr_decay: float = OptimConfig.lr_decay
    lr_decay_every: int = OptimConfig.lr_decay_every
    nesterov: bool = OptimConfig.nesterov

    CONSTRAINTS: ClassVar[dict[str, Constraint]] = {
        "method": one_of(METHODS),
        "seed": int_at_least(0),
        "dataset": one_of(DATASETS),
        "train_per_class": optional(int_at_least(1)),
        "test_per_class": optional(int_at_least(1)),
        "subset_seed": int_at_least(0),
        "augment": boolean(),
        "device": Constraint("'auto', 'cpu', 'cuda' or 'cuda:N'", lambda v: isinstance(v, str) and (v in ("auto", "cpu", "cuda") or (v.startswith("cuda:") and v[5:].isdigit())), ("gpu", 0)),
    }

    def __post_init__(self) -> None:
        validate_fields(self, self.CONSTRAINTS)
        self.network_spec(), self.train_config()  # validate the parts with their own rules

    def network_spec(self) -> NetworkSpec:
        return NetworkSpec(**{k: getattr(self, k) for k in _NETWORK_KEYS})

    def train_config(self) -> TrainConfig:
        optim = OptimConfig(**{k: getattr(self, k) for k in _OPTIM_KEYS})
        return TrainConfig(**{k: getattr(self, k) for k in _TRAIN_KEYS}, optim=optim)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def key(self) -> str:
        """A stable digest of the full config (the results store's primary key)."""
        return hashlib.sha256(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()[:20]

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_dict(cls, values: dict[str, Any], *, where: str) -> "RunConfig":
        unknown = sorted(set(values) - set(cls.keys()))
        if unknown:
            raise InvalidArgument(f"unknown key {unknown[0]!r} in {where}; known keys: {', '.join(cls.keys())}")
        # TOML has arrays, not tuples; tuple-valued fields take them as tuples.
        coerced = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        return cls(**coerced)


def parse_assignment(text: str) -> tuple[str, Any]:
    """'key=value' with a TOML value; a bare word that is not TOML is taken as a string."""
    if "=" not in text:
        raise InvalidArgument(f"'--set' must be key=value, got {text!r}")
    key, raw = (s.strip() for s in text.split("=", 1))
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, value


@dataclass(frozen=True)
class StudySpec:
    name: str
    description: str
    base: dict[str, Any]
    grid: dict[str, list[Any]]
    profiles: dict[str, dict[str, Any]]
    seeds: int
    path: Path

    def settings(self, profile: str, overrides: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[Any]]]:
        """(fixed settings, grid axes) after the profile and the overrides."""
        if profile not in PROFILES:
            raise InvalidArgument(f"'--profile' must be one of {list(PROFILES)}, got {profile!r}")
        fixed = {**self.base, **self.profiles.get(profile, {})}
        grid = {k: list(v) for k, v in self.grid.items()}
        for key, value in overrides.items():
            if key in grid:
                grid[key] = value if isinstance(value, list) else [value]
            else:
                fixed[key] = value
        return fixed, grid

    def runs(self, profile: str, overrides: dict[str, Any], seeds: int | None = None) -> list[RunConfig]:
        """Every run of the study: the grid's product times the seeds, validated."""
        seeds = self.seeds if seeds is None else seeds
        if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
            raise InvalidArgument(f"'--seeds' must be an int >= 1, got {seeds!r}")
        fixed, grid = self.settings(profile, overrides)
        axes = list(grid)
        runs = []
        for point in itertools.product(*(grid[a] for a in axes)):
            for seed in range(seeds):
                values = {**fixed, **dict(zip(axes, point)), "seed": seed}
                runs.append(RunConfig.from_dict(values, where=f"{self.path.name} (profile {profile})"))
        return runs


def studies_dir() -> Path:
    """$DGLSIM_STUDIES, else ./studies when it exists, else the studies/ folder of this checkout."""
    env = os.environ.get("DGLSIM_STUDIES")
    if env:
        return Path(env)
    local = Path.cwd() / "studies"
    return local if local.is_dir() else Path(__file__).resolve().parents[2] / "studies"


def list_studies() -> list[str]:
    return sorted(p.stem for p in studies_dir().glob("*.toml"))


def load_study(name: str) -> StudySpec:
    path = studies_dir() / f"{name}.toml"
    if not path.is_file():
        raise InvalidArgument(f"study {name!r} not found: no {path}; known studies: {', '.join(list_studies()) or 'none'}")
    with open(path, "rb") as f:
        doc = tomllib.load(f)
    known = {"description", "seeds", "base", "grid", "profiles"}
    unknown = sorted(set(doc) - known)
    if unknown:
        raise InvalidArgument(f"unknown table or key {unknown[0]!r} in {path}; known: {sorted(known)}")
    bad_profiles = sorted(set(doc.get("profiles", {})) - set(PROFILES))
    if bad_profiles:
        raise InvalidArgument(f"profile {bad_profiles[0]!r} in {path} must be one of {list(PROFILES)}")
    grid = doc.get("grid", {})
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise InvalidArgument(f"grid axis {key!r} in {path} must be a non-empty list, got {values!r}")
    return StudySpec(name, doc.get("description", ""), doc.get("base", {}), grid, doc.get("profiles", {}), doc.get("seeds", 1), path)
