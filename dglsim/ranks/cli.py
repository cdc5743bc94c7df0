"""python -m dglsim.ranks CONFIG [--set key=value ...] [--out DIR] [--overwrite] [--in-flight N] [--timeout S] [--threads N]

Under torchrun (RANK and WORLD_SIZE set) this process is one rank; otherwise it launches the
K = cfg.k ranks on this machine. CONFIG is a TOML file of run settings (the keys of a study's
[base] table, see dglsim.recipe.config.RunConfig) with an optional [dist] table (in_flight,
timeout_s, threads), or a JSON object of the same keys.

A run writes into a folder that holds no earlier run's outputs; `--overwrite` deletes them
first. Every rank checks before the process group forms, so no rank has written anything yet.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tomllib
from dataclasses import dataclass, fields
from datetime import timedelta
from pathlib import Path
from typing import ClassVar

from dglsim.constraints import Constraint, int_at_least, real_in, validate_fields
from dglsim.errors import DataError, InvalidArgument, warnings_on_one_line
from dglsim.recipe.config import RunConfig, parse_assignment


@dataclass(frozen=True)
class RankSettings:
    """The [dist] table: how the ranks talk, not what they compute (not part of RunConfig)."""

    in_flight: int = 2  # sync: items in flight between two ranks
    timeout_s: float = 60.0  # a peer silent this long has failed
    threads: int = 1  # intra-op threads per rank

    CONSTRAINTS: ClassVar[dict[str, Constraint]] = {
        "in_flight": int_at_least(1),
        # a day at most: gloo's timeout is a timedelta of milliseconds, and no peer is waited for longer
        "timeout_s": real_in(0.0, 86400.0, low_open=True),
        "threads": int_at_least(1),
    }

    def __post_init__(self) -> None:
        validate_fields(self, self.CONSTRAINTS, owner="the [dist] table")


DIST_KEYS = {f.name: f.default for f in fields(RankSettings)}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m dglsim.ranks", description="Real multi-process DGL on torch.distributed (gloo): one rank per module.")
    p.add_argument("config", type=Path, help="TOML file of run settings (RunConfig keys; optional [dist] table)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="override a run setting (TOML value); repeatable")
    p.add_argument("--out", type=Path, default=None, help="output folder (default results/dist/CONFIG-STEM)")
    p.add_argument("--overwrite", action="store_true", help="delete an earlier run's outputs in --out instead of refusing to start")
    p.add_argument("--in-flight", type=int, default=None, help="sync: items in flight between two ranks")
    p.add_argument("--timeout", type=float, default=None, help="seconds a silent peer is waited for before the run stops")
    p.add_argument("--threads", type=int, default=None, help="intra-op threads per rank")
    p.add_argument("--no-progress", action="store_true")
    return p


def load_config(path: Path, overrides: list[str]) -> tuple[RunConfig, dict]:
    if not path.is_file():
        raise InvalidArgument(f"'config' of dglsim.ranks must be a TOML file, got {str(path)!r} (not found)")
    try:
        if path.suffix == ".json":  # a RunConfig written by a program (RunConfig.as_dict), as dglsim.ranks.run does
            doc = json.loads(path.read_text())
        else:
            with open(path, "rb") as f:
                doc = tomllib.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InvalidArgument(f"'config' of dglsim.ranks must be readable {'JSON' if path.suffix == '.json' else 'TOML'}: {path}: {exc}") from exc
    if not isinstance(doc, dict):
        raise InvalidArgument(f"'config' of dglsim.ranks must hold a table of run settings, got {type(doc).__name__} in {path}")
    table = doc.pop("dist", {})
    if not isinstance(table, dict):
        raise InvalidArgument(f"'dist' in {path} must be a table (in_flight, timeout_s, threads), got {table!r}")
    dist_settings = DIST_KEYS | table
    unknown = sorted(set(dist_settings) - set(DIST_KEYS))
    if unknown:
        raise InvalidArgument(f"unknown key {unknown[0]!r} in the [dist] table of {path}; known keys: {', '.join(DIST_KEYS)}")
    doc |= dict(parse_assignment(a) for a in overrides)
    cfg = RunConfig.from_dict(doc | {"method": "distributed"}, where=str(path))
    return cfg, dist_settings


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    warnings_on_one_line()
    try:
        cfg, settings = load_config(args.config, args.overrides)
        for flag, key in ((args.in_flight, "in_flight"), (args.timeout, "timeout_s"), (args.threads, "threads")):
            if flag is not None:
                settings[key] = flag
        _check(cfg, settings)
        out = args.out or Path("results") / "dist" / args.config.stem
        prepare_out(out, overwrite=args.overwrite)
    except (InvalidArgument, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        return _rank(cfg, settings, out, progress=not args.no_progress)
    from dglsim.ranks.launch import launch

    passthrough = [str(args.config), *[f"--set={a}" for a in args.overrides], f"--out={out}", f"--in-flight={settings['in_flight']}",
                   f"--timeout={settings['timeout_s']}", f"--threads={settings['threads']}"] + (["--no-progress"] if args.no_progress else [])
    result = launch(cfg.k, passthrough, out=out, threads=settings["threads"])
    if result.ok:
        return 0
    print(f"error: {result.summary()}; partial traces in {out}", file=sys.stderr)
    return 130 if result.interrupted else 1


def _check(cfg: RunConfig, settings: dict) -> None:
    RankSettings(**settings)
    if cfg.device not in ("auto", "cpu"):  # "auto" resolves to the CPU here: provenance records it
        raise InvalidArgument(f"'device' of dglsim.ranks must be 'auto' or 'cpu' (ranks train on the CPU and talk over gloo), got {cfg.device!r}")


def run_outputs(out: Path) -> list[Path]:
    """The files an earlier run left in `out`: results, merged trace, parameters, per-rank traces and errors."""
    if not out.is_dir():
        return []
    named = [out / n for n in ("results.json", "trace.csv", "state.pt")]
    return [p for p in named if p.exists()] + sorted(out.glob("rank*.trace.csv")) + sorted(out.glob("rank*.error.json"))


def prepare_out(out: Path, *, overwrite: bool) -> None:
    """Refuse a folder holding an earlier run's outputs (a failed rerun would look like a success
    beside them), or delete those outputs with `overwrite`."""
    if out.exists() and not out.is_dir():
        raise InvalidArgument(f"'--out' of dglsim.ranks must be a folder, got the file {out}")
    earlier = run_outputs(out)
    if earlier and not overwrite:
        raise InvalidArgument(f"'--out' of dglsim.ranks must not hold an earlier run's outputs, got {len(earlier)} in {out} "
                              f"({', '.join(p.name for p in earlier[:3])}{', ...' if len(earlier) > 3 else ''}); pass --overwrite or another --out")
    for path in earlier:
        path.unlink(missing_ok=True)  # ranks of one run may race here: all delete the same files


def _rank(cfg: RunConfig, settings: dict, out: Path, *, progress: bool) -> int:
    import torch
    import torch.distributed as dist

    from dglsim.ranks.lifeline import Lifeline
    from dglsim.ranks.worker import RankOptions, run_rank

    torch.set_num_threads(settings["threads"])
    lifeline = Lifeline(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), out)
    lifeline.watch_signals()  # from here on a signal or the launcher's death keeps what the rank did
    dist.init_process_group("gloo", timeout=timedelta(seconds=settings["timeout_s"]))
    lifeline.connect(settings["timeout_s"])
    try:
        run_rank(cfg, RankOptions(out=out, in_flight=settings["in_flight"], timeout_s=settings["timeout_s"], progress=progress), lifeline)
    except Exception as exc:  # peers may be blocked in gloo: fail exits without a clean shutdown
        lifeline.fail(str(exc), blames=getattr(exc, "peer", None))
    lifeline.done()
    dist.barrier()  # every rank is done with the transport
    # gloo's teardown at interpreter exit can abort a process whose work is complete (its pair
    # threads race the destructor); everything is written, so leave without it
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
