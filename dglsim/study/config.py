"""Study configs: `studies/NAME.toml` -> validated, frozen RunConfigs (one per grid point and seed).

A study file has a `[base]` table of run settings, a `[grid]` table whose lists are the axes
swept (or several `[[grid]]` tables: the runs are the union of their products, for sweeps whose
axes only make sense together, such as K for vector quantization only), an optional `[reference]` table (one extra run per seed, e.g. synchronous DGL beside an
asynchronous sweep), an optional `[launcher]` table (where runs execute: dglsim.study.launch), an optional `[report]`
table (settings of the study's report, such as a target accuracy; a value may be a table by profile), and `[profiles.smoke|default|paper]` tables that override the base (a
list for a grid key replaces that axis; `seeds` sets the profile's number of seeds).
`--set key=value` overrides any key last. Every key is a field of `RunConfig`; an unknown key or a bad value is
an InvalidArgument naming the key, the rule and the value, raised before any run starts.
"""

from __future__ import annotations

import itertools
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dglsim.constraints import renamed
from dglsim.errors import InvalidArgument
from dglsim.recipe.config import RENAMED, RunConfig, parse_assignment

__all__ = ["RunConfig", "StudySpec", "merge_axes", "PROFILES", "load_study", "parse_assignment", "studies_dir", "list_studies"]

# smoke: seconds (CI); default: minutes on 2 CPU cores; long: a schedule long enough for what a
# run learns beside the network (codebooks) to converge, an hour or more on 2 CPU cores; paper:
# the paper's settings, for a GPU. A study need not have every profile: a missing one is its base.
PROFILES = ("smoke", "default", "long", "paper")


def merge_axes(grids: list[dict[str, list[Any]]]) -> dict[str, list[Any]]:
    """Each axis of any grid with the values it takes in any of them, in first-seen order."""
    axes: dict[str, list[Any]] = {}
    for grid in grids:
        for key, values in grid.items():
            axes.setdefault(key, [])
            axes[key] += [v for v in values if v not in axes[key]]
    return axes


@dataclass(frozen=True)
class StudySpec:
    name: str
    description: str
    base: dict[str, Any]
    grids: list[dict[str, list[Any]]]  # one or more; the runs are the union of their products
    profiles: dict[str, dict[str, Any]]
    seeds: int
    path: Path
    reference: dict[str, Any] | None = None  # settings of one extra run per seed, outside the grid
    launcher: dict[str, Any] = field(default_factory=dict)  # the [launcher] table: options of the launchers (dglsim.study.launch)
    report: dict[str, Any] = field(default_factory=dict)  # the [report] table: settings of the study's report, not of its runs

    def report_settings(self, profile: str) -> dict[str, Any]:
        """The [report] table for `profile`: a value given as a table by profile takes the
        profile's entry (or its "default" entry)."""
        out = {}
        for key, value in self.report.items():
            if isinstance(value, dict):
                if profile not in value and "default" not in value:
                    raise InvalidArgument(f"report setting {key!r} in {self.path} must have an entry for profile {profile!r} or 'default', got {value!r}")
                value = value.get(profile, value.get("default"))
            out[key] = value
        return out

    @property
    def grid(self) -> dict[str, list[Any]]:
        """Every axis with every value it takes in any of the grids."""
        return merge_axes(self.grids)

    def settings(self, profile: str, overrides: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, list[Any]]]]:
        """(fixed settings, grids) after the profile and the overrides."""
        if profile not in PROFILES:
            raise InvalidArgument(f"'--profile' must be one of {list(PROFILES)}, got {profile!r}")
        where = f"{self.path.name} (profile {profile})"
        fixed = renamed(self.base, RENAMED, where=where)
        # A profile with grids of its own ([[profiles.NAME.grid]]) runs those instead of the study's.
        own = self.profiles.get(profile, {}).get("grid")
        grids = [{k: list(v) for k, v in renamed(grid, RENAMED, where=where).items()} for grid in (self.grids if own is None else own)]
        overrides = renamed(overrides, RENAMED, where="--set")
        # A profile or an override that sets a grid key replaces that axis (a list) or fixes it,
        # in every grid that has it.
        profile_settings = {k: v for k, v in renamed(self.profiles.get(profile, {}), RENAMED, where=where).items() if k not in ("seeds", "grid")}
        for key, value in [*profile_settings.items(), *overrides.items()]:
            if isinstance(value, list) and not value:
                raise InvalidArgument(f"{key!r} must be a non-empty list when it sets a grid axis, got []")
            holders = [grid for grid in grids if key in grid]
            for grid in holders:
                grid[key] = value if isinstance(value, list) else [value]
            if not holders:
                fixed[key] = value
        return fixed, grids

    def runs(self, profile: str, overrides: dict[str, Any], seeds: int | None = None) -> list[RunConfig]:
        """Every run of the study: the grids' products times the seeds, validated."""
        overrides = dict(overrides)
        chosen = overrides.pop("seed", None)  # --set seed=N or seed=[...]: exactly those seeds
        if chosen is not None:
            if seeds is not None:
                raise InvalidArgument(f"'seed' and '--seeds' must not both be given (seed names the seeds, --seeds counts them from 0), got seed={chosen!r} and --seeds {seeds!r}")
            chosen = chosen if isinstance(chosen, list) else [chosen]
            if not chosen or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in chosen) or len(set(chosen)) != len(chosen):
                raise InvalidArgument(f"'seed' must be an int >= 0 or a list of distinct ones, got {chosen!r}")
            seed_list = list(chosen)
        else:
            if seeds is None:  # a profile may set its own number of seeds
                seeds = self.profiles.get(profile, {}).get("seeds", self.seeds)
            if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
                raise InvalidArgument(f"'--seeds' must be an int >= 1, got {seeds!r}")
            seed_list = list(range(seeds))
        fixed, grids = self.settings(profile, overrides)
        where = f"{self.path.name} (profile {profile})"
        points = []
        for grid in grids:
            axes = list(grid)
            points += [dict(zip(axes, point)) for point in itertools.product(*(grid[a] for a in axes))]
        if self.reference is not None:
            points.append({a: values[0] for a, values in grids[0].items()} | self.reference)
        runs = []
        for point in points:
            for seed in seed_list:
                run = RunConfig.from_dict({**fixed, **point, "seed": seed}, where=where)
                if run not in runs:  # a point in several grids, or a reference equal to a grid point, runs once
                    runs.append(run)
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
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InvalidArgument(f"study file {str(path)!r} must be readable TOML: {exc}") from exc
    known = {"description", "seeds", "base", "grid", "profiles", "reference", "launcher", "report"}
    unknown = sorted(set(doc) - known)
    if unknown:
        raise InvalidArgument(f"unknown table or key {unknown[0]!r} in {path}; known: {sorted(known)}")
    bad_profiles = sorted(set(doc.get("profiles", {})) - set(PROFILES))
    if bad_profiles:
        raise InvalidArgument(f"profile {bad_profiles[0]!r} in {path} must be one of {list(PROFILES)}")
    for table in ("base", "profiles", "reference", "launcher", "report"):
        if table in doc and not isinstance(doc[table], dict):
            raise InvalidArgument(f"{table!r} in {path} must be a table, got {doc[table]!r}")
    for profile, settings in doc.get("profiles", {}).items():
        if not isinstance(settings, dict):
            raise InvalidArgument(f"profile {profile!r} in {path} must be a table, got {settings!r}")
    grids = _grids(doc.get("grid", {}), f"'grid' in {path}")
    profiles = {name: settings | ({"grid": _grids(settings["grid"], f"'grid' of profile {name!r} in {path}")} if "grid" in settings else {})
                for name, settings in doc.get("profiles", {}).items()}
    return StudySpec(name, doc.get("description", ""), doc.get("base", {}), grids, profiles, doc.get("seeds", 1), path, doc.get("reference"), doc.get("launcher", {}),
                     doc.get("report", {}))


def _grids(value: Any, where: str) -> list[dict[str, list[Any]]]:
    """A grid table or an array of them, each axis a non-empty list."""
    grids = value if isinstance(value, list) else [value]
    if not grids or not all(isinstance(g, dict) for g in grids):
        raise InvalidArgument(f"{where} must be a table or an array of tables, got {value!r}")
    for grid in grids:
        for key, values in grid.items():
            if not isinstance(values, list) or not values:
                raise InvalidArgument(f"grid axis {key!r} in {where} must be a non-empty list, got {values!r}")
    return grids
