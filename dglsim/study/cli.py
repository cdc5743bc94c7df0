"""python -m dglsim.study list | NAME [--profile P] [--set key=value ...] [--seeds N] [--jobs N] [--out DIR]
[--launcher local|ray|slurm] [--address ADDR] [--retry-failed] [--allow-mixed-revisions]"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from dglsim.errors import DataError, InvalidArgument, warnings_on_one_line
from dglsim.limits import ENV_VAR
from dglsim.study.config import PROFILES, list_studies, load_study, parse_assignment, studies_dir


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m dglsim.study", description="Run a dglsim study (studies/NAME.toml) or list them.")
    p.add_argument("name", help="a study name, or 'list'")
    p.add_argument("--profile", default="default", choices=PROFILES, help="smoke: seconds (CI); default: minutes on 2 CPU cores; "
                   "long: learned state (codebooks) converges, an hour or more on 2 CPU cores; paper: the paper's settings, for a GPU")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="override a config key (TOML value); repeatable")
    p.add_argument("--seeds", type=int, default=None, help="number of seeds (default: the study's)")
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel processes (threads are shared out among them)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default results/NAME/PROFILE)")
    p.add_argument("--launcher", default="local", help="where runs execute: local (this machine), ray (a Ray cluster: pip install 'dglsim[ray]'), "
                   "slurm (submitit jobs: pip install 'dglsim[slurm]'); options: the study's [launcher] table and --set launcher.KEY=VALUE")
    p.add_argument("--address", default=None, help="ray: the cluster's address (default: RAY_ADDRESS, else a local cluster for this study)")
    p.add_argument("--retry-failed", action="store_true", help="rerun the runs that failed before (they are skipped otherwise)")
    p.add_argument("--allow-mixed-revisions", action="store_true", help="let one report hold runs computed by different git revisions of the code")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--allow-large", action="store_true", help="lift the declared limits on work (dglsim.limits)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.allow_large:
        os.environ[ENV_VAR] = "1"  # worker processes inherit it
    warnings_on_one_line()
    if args.name == "list":
        failed = 0
        for name in list_studies():
            try:
                print(f"{name:20s} {load_study(name).description}")
            except InvalidArgument as exc:  # one broken file must not hide the others
                print(f"{name:20s} error: {exc}")
                failed += 1
        print(f"(from {studies_dir()})", file=sys.stderr)
        return 2 if failed else 0
    from dglsim.study.runner import run_study  # imports torch: not needed for 'list'

    try:
        spec = load_study(args.name)
        overrides = dict(parse_assignment(a) for a in args.overrides)
        launcher_options = {k.removeprefix("launcher."): overrides.pop(k) for k in list(overrides) if k.startswith("launcher.")}
        if args.address is not None:
            launcher_options["address"] = args.address
        if args.out is not None and args.out.exists() and not args.out.is_dir():
            raise InvalidArgument(f"'--out' must be a folder (or not exist yet), got the file {str(args.out)!r}")
        outcome = run_study(spec, profile=args.profile, overrides=overrides, seeds=args.seeds, jobs=args.jobs, out=args.out, launcher=args.launcher,
                            launcher_options=launcher_options, retry_failed=args.retry_failed, allow_mixed_revisions=args.allow_mixed_revisions,
                            show_progress=not args.no_progress)
    except (InvalidArgument, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    print(f"{len(outcome.executed)} runs executed" + (f", {len(outcome.failed)} failed" if outcome.failed else "") + "; wrote:")
    for path in outcome.outputs:
        print(f"  {path}")
    return 1 if outcome.failed else 0
