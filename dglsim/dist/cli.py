"""python -m dglsim.dist CONFIG [--set key=value ...] [--out DIR] [--in-flight N] [--timeout S] [--threads N]

Under torchrun (RANK and WORLD_SIZE set) this process is one rank; otherwise it launches the
K = cfg.k ranks on this machine. CONFIG is a TOML file of run settings (the keys of a study's
[base] table, see dglsim.study.config.RunConfig) with an optional [dist] table (in_flight,
timeout_s, threads), or a JSON object of the same keys.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tomllib
from datetime import timedelta
from pathlib import Path

from dglsim.constraints import int_at_least, real_in, validate
from dglsim.errors import DataError, InvalidArgument
from dglsim.study.config import RunConfig, parse_assignment

DIST_KEYS = {"in_flight": 2, "timeout_s": 60.0, "threads": 1}
# a day at most: gloo's timeout is a timedelta of milliseconds, and no peer is waited for longer
DIST_CONSTRAINTS = {"in_flight": int_at_least(1), "timeout_s": real_in(0.0, 86400.0, low_open=True), "threads": int_at_least(1)}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m dglsim.dist", description="Real multi-process DGL on torch.distributed (gloo): one rank per module.")
    p.add_argument("config", type=Path, help="TOML file of run settings (RunConfig keys; optional [dist] table)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="override a run setting (TOML value); repeatable")
    p.add_argument("--out", type=Path, default=None, help="output folder (default results/dist/CONFIG-STEM)")
    p.add_argument("--in-flight", type=int, default=None, help="sync: items in flight between two ranks")
    p.add_argument("--timeout", type=float, default=None, help="seconds a silent peer is waited for before the run stops")
    p.add_argument("--threads", type=int, default=None, help="intra-op threads per rank")
    p.add_argument("--no-progress", action="store_true")
    return p


def load_config(path: Path, overrides: list[str]) -> tuple[RunConfig, dict]:
    if not path.is_file():
        raise InvalidArgument(f"'config' of dglsim.dist must be a TOML file, got {str(path)!r} (not found)")
    try:
        if path.suffix == ".json":  # a RunConfig written by a program (RunConfig.as_dict), as dglsim.dist.run does
            doc = json.loads(path.read_text())
        else:
            with open(path, "rb") as f:
                doc = tomllib.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InvalidArgument(f"'config' of dglsim.dist must be readable {'JSON' if path.suffix == '.json' else 'TOML'}: {path}: {exc}") from exc
    if not isinstance(doc, dict):
        raise InvalidArgument(f"'config' of dglsim.dist must hold a table of run settings, got {type(doc).__name__} in {path}")
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
    try:
        cfg, settings = load_config(args.config, args.overrides)
        for flag, key in ((args.in_flight, "in_flight"), (args.timeout, "timeout_s"), (args.threads, "threads")):
            if flag is not None:
                settings[key] = flag
        _check(settings)
    except (InvalidArgument, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = args.out or Path("results") / "dist" / args.config.stem
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        return _rank(cfg, settings, out, progress=not args.no_progress)
    from dglsim.dist.launch import launch

    passthrough = [str(args.config), *[f"--set={a}" for a in args.overrides], f"--out={out}", f"--in-flight={settings['in_flight']}",
                   f"--timeout={settings['timeout_s']}", f"--threads={settings['threads']}"] + (["--no-progress"] if args.no_progress else [])
    result = launch(cfg.k, passthrough, threads=settings["threads"], grace_s=settings["timeout_s"] + 10)
    if result.ok:
        return 0
    print(f"error: rank(s) {', '.join(map(str, result.failed))} failed (exit codes {result.returncodes})"
          + (f"; ranks {', '.join(map(str, result.terminated))} were stopped" if result.terminated else ""), file=sys.stderr)
    return 1


def _check(settings: dict) -> None:
    for name, constraint in DIST_CONSTRAINTS.items():
        validate("dglsim.dist", name, settings[name], constraint)


def _rank(cfg: RunConfig, settings: dict, out: Path, *, progress: bool) -> int:
    import torch
    import torch.distributed as dist

    from dglsim.dist.worker import RankOptions, run_rank

    torch.set_num_threads(settings["threads"])
    rank = int(os.environ["RANK"])
    dist.init_process_group("gloo", timeout=timedelta(seconds=settings["timeout_s"]))
    try:
        run_rank(cfg, RankOptions(out=out, in_flight=settings["in_flight"], timeout_s=settings["timeout_s"], progress=progress))
    except Exception as exc:
        message = str(exc) if str(exc).startswith(f"rank {rank}:") else f"rank {rank}: {exc}"
        print(f"error: {message}", file=sys.stderr, flush=True)
        os._exit(1)  # peers may be blocked in gloo; do not wait for a clean shutdown
    dist.barrier()  # every rank is done with the transport
    # gloo's teardown at interpreter exit can abort a process whose work is complete (its pair
    # threads race the destructor); everything is written, so leave without it
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
