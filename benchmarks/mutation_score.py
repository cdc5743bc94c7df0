"""The mutation score per file from a finished `mutmut run` (the `mutation` tox env runs both).

mutmut writes, next to each mutated file under mutants/, a .meta file with the exit code of the
oracle for every mutant. A mutant is killed when the oracle (the tests named in pyproject.toml's
[tool.mutmut]) fails on it or times out; it survives when every test passes; "no tests" means no
test of the oracle calls the mutated function. Prints one line per file and the surviving
mutants' names (`mutmut show NAME` prints the diff), and exits 1 when a file is under --goal.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

KILLED = {1, 3, 24, 36, 152, 255, -24}  # failed tests, pytest's internal error, timeouts
SURVIVED = {0}
NO_TESTS = {5, 33}


def scores(root: Path) -> dict[str, dict[str, list[str]]]:
    out = {}
    for meta in sorted(root.rglob("*.py.meta")):
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        groups: dict[str, list[str]] = {"killed": [], "survived": [], "no tests": [], "other": []}
        for name, code in codes.items():
            group = "killed" if code in KILLED else "survived" if code in SURVIVED else "no tests" if code in NO_TESTS else "other"
            groups[group].append(name)
        out[meta.relative_to(root).as_posix().removesuffix(".meta")] = groups
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutants", type=Path, default=Path("mutants"), help="mutmut's working folder")
    parser.add_argument("--goal", type=float, default=0.85, help="the least share of mutants killed per file")
    args = parser.parse_args(argv)
    table = scores(args.mutants)
    if not table:
        print(f"error: no mutmut results (*.py.meta) under {args.mutants}; run 'mutmut run' first", file=sys.stderr)
        return 2
    below = []
    print(f"{'file':40s} {'mutants':>8s} {'killed':>7s} {'survived':>9s} {'no tests':>9s} {'score':>6s}")
    for path, g in table.items():
        total = sum(len(v) for v in g.values())
        score = len(g["killed"]) / total if total else 1.0
        print(f"{path:40s} {total:8d} {len(g['killed']):7d} {len(g['survived']):9d} {len(g['no tests']):9d} {score:6.1%}")
        if score < args.goal:
            below.append(path)
    for g in table.values():
        for name in g["survived"] + g["no tests"]:
            print(f"  {'survived' if name in g['survived'] else 'no tests'}: {name}")
    if below:
        print(f"under the goal of {args.goal:.0%}: {', '.join(below)}")
    return 1 if below else 0


if __name__ == "__main__":
    raise SystemExit(main())
