"""Launchers side by side: one study profile run to completion by each launcher, in fresh
output folders, in an order that rotates from round to round. Reported per launcher: the median
over rounds of its wall time (the whole command, as a user runs it: start-up, every run, the
report) and its ratio to `local` in the same round; and whether its stored rows equal the local
launcher's value for value (they must: same configs, same seeds, same thread count).

    python benchmarks/bench_launchers.py [--study buffer_sweep] [--profile default] [--jobs 2]
        [--launchers local ray] [--rounds 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _run(study: str, profile: str, jobs: int, launcher: str, out: Path, extra: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dglsim.study", study, "--profile", profile, "--jobs", str(jobs), "--launcher", launcher,
                    "--out", str(out), "--no-progress", *extra], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def _rows(out: Path) -> dict[str, str]:
    with sqlite3.connect(out / "results.sqlite") as db:
        return dict(db.execute("SELECT key, rows FROM runs"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--study", default="buffer_sweep")
    p.add_argument("--profile", default="default")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--launchers", nargs="+", default=["local", "ray"])
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--set", dest="extra", action="append", default=[], help="passed on as --set (e.g. launcher.cluster=local for slurm)")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    extra = [a for kv in args.extra for a in ("--set", kv)]
    walls: dict[str, list[float]] = {name: [] for name in args.launchers}
    ratios: dict[str, list[float]] = {name: [] for name in args.launchers}
    equal: dict[str, bool] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            order = args.launchers[r % len(args.launchers):] + args.launchers[: r % len(args.launchers)]
            this_round, rows = {}, {}
            for name in order:
                out = Path(tmp) / f"{name}-{r}"
                this_round[name] = _run(args.study, args.profile, args.jobs, name, out, extra)
                rows[name] = _rows(out)
                print(f"round {r}: {name} {this_round[name]:.1f} s ({len(rows[name])} runs)", file=sys.stderr)
            for name in args.launchers:
                walls[name].append(this_round[name])
                ratios[name].append(this_round[name] / this_round["local"] if "local" in this_round else float("nan"))
                equal[name] = equal.get(name, True) and rows[name] == rows.get("local", rows[name])
    report = {"study": args.study, "profile": args.profile, "jobs": args.jobs, "rounds": args.rounds,
              "launchers": {name: {"wall_s": statistics.median(walls[name]), "ratio_to_local": statistics.median(ratios[name]),
                                   "rows_equal_local": equal[name]} for name in args.launchers}}
    print(f"{args.study} [{args.profile}], --jobs {args.jobs}, median of {args.rounds} round(s):")
    for name, fig in report["launchers"].items():
        print(f"  {name:6s} {fig['wall_s']:8.1f} s   x{fig['ratio_to_local']:.3f} of local   rows equal to local: {fig['rows_equal_local']}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0 if all(f["rows_equal_local"] for f in report["launchers"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
