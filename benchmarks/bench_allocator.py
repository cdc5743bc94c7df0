"""Allocator settings for CPU training, side by side: glibc's malloc as it comes, glibc with the
tunables dglsim sets (`dglsim.allocator.GLIBC_TUNABLES`), and tcmalloc where installed.

Each round runs every variant once, in a fresh child process, in an order that rotates from
round to round; a child makes `--steps` DGL steps (every module's local step on its input) of
the delay_sweep default network (authors' CNN, K = 6, width 16, MLP-SR heads, batch 128) on
random inputs, with an evaluation pass over 500 images every 10 steps (the study's test batches).
Reported per variant: the median over rounds of its wall time, CPU system time
and minor page faults as ratios to glibc as it comes in the same round.

    python benchmarks/bench_allocator.py [--rounds 5] [--steps 40] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dglsim.allocator import GLIBC_TUNABLES, find_tcmalloc  # noqa: E402

CHILD = """
import sys, torch
from dglsim.models import NetworkSpec, build_network
from dglsim.train.steps import local_step
torch.manual_seed(0)
net = build_network(NetworkSpec(arch="authors_cnn", k=6, width=16, head="mlp_sr"), seed=0)
opts = [torch.optim.SGD(net.module_parameters(j), lr=0.01, momentum=0.9) for j in range(net.k)]
x0, y, probe = torch.randn(128, 3, 32, 32), torch.randint(0, 10, (128,)), torch.randn(500, 3, 32, 32)
for i in range(int(sys.argv[1])):
    x = x0
    for j in range(net.k):
        x, _ = local_step(net.stages[j], net.heads[j], opts[j], x, y)
    if i % 10 == 9:  # an evaluation in batches of 500, as the study's test loader
        net.eval()
        with torch.no_grad():
            net.all_logits(probe)
        net.train()
"""


def _variants() -> dict[str, dict]:
    base = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "GLIBC_TUNABLES")}
    variants = {"glibc": base, "glibc_tuned": base | {"GLIBC_TUNABLES": GLIBC_TUNABLES}}
    lib = find_tcmalloc()
    if lib is not None:
        variants["tcmalloc"] = base | {"LD_PRELOAD": lib}
    return variants


def _run(env: dict, steps: int) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", CHILD, str(steps)], env=env, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"wall_s": wall, "sys_s": after.ru_stime - before.ru_stime, "minor_faults": after.ru_minflt - before.ru_minflt}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    variants = _variants()
    names = list(variants)
    rounds = []
    for r in range(args.rounds):
        order = names[r % len(names):] + names[: r % len(names)]
        rounds.append({name: _run(variants[name], args.steps) for name in order})
    report = {"steps": args.steps, "rounds": args.rounds, "tunables": GLIBC_TUNABLES, "variants": {}}
    for name in names:
        row = {}
        for q in ("wall_s", "sys_s", "minor_faults"):
            row[q + "_median"] = statistics.median(rd[name][q] for rd in rounds)
            row[q + "_ratio_to_glibc"] = statistics.median(rd[name][q] / max(rd["glibc"][q], 1e-9) for rd in rounds)
        report["variants"][name] = row
        print(f"{name:12s} wall {row['wall_s_median']:6.2f} s ({row['wall_s_ratio_to_glibc']:.2f}x glibc)  "
              f"sys {row['sys_s_median']:6.2f} s ({row['sys_s_ratio_to_glibc']:.2f}x)  minor faults {row['minor_faults_median']:>10,.0f} ({row['minor_faults_ratio_to_glibc']:.3f}x)")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
