"""Time of one DGL step over time of one backprop step on the same network (goal <= 1.00).

DGL runs K local steps (module j forward, its head, backward, update); backprop runs one
forward through all modules and the last head, then one backward. DGL skips the input
gradient of every module but the first; its heads add a few percent of FLOPs.

    python benchmarks/bench_step_ratio.py [--rounds 30] [--json out.json]

Like the study runner, it re-executes itself with tcmalloc preloaded when available (DGLSIM_ALLOCATOR=system keeps glibc's malloc, for comparison).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from timing import finish_report, paired_ratio  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import torch

    from dglsim.models import NetworkSpec, build_network
    from dglsim.recipe.provenance import provenance
    from dglsim.train import OptimConfig, backprop_step, dgl_step

    networks = {
        # The paper's 4-module learning-curve network (VGG-like), light MLP-SR heads.
        "learning_curve_cnn K=4 w=64 mlp_sr": NetworkSpec(arch="learning_curve_cnn", k=4, head="mlp_sr"),
        # The network of sync_baselines' default profile.
        "authors_cnn K=6 w=32 mlp_sr": NetworkSpec(arch="authors_cnn", k=6, width=32, head="mlp_sr"),
    }
    x = torch.randn(args.batch, 3, 32, 32)
    y = torch.randint(0, 10, (args.batch,))
    results = []
    for name, spec in networks.items():
        dgl_net, bp_net = build_network(spec, seed=0), build_network(spec, seed=0)
        dgl_opts = [OptimConfig().make(dgl_net.module_parameters(j)) for j in range(dgl_net.k)]
        bp_params = [p for s in bp_net.stages for p in s.parameters()] + list(bp_net.heads[-1].parameters())
        bp_opt = OptimConfig().make(bp_params)
        r = paired_ratio(lambda: dgl_step(dgl_net, dgl_opts, x, y), lambda: backprop_step(bp_net, bp_opt, x, y), rounds=args.rounds)
        r["network"] = name
        results.append(r)
        print(f"{name:40s} DGL/backprop = {r['ratio_median']:.3f} (IQR {r['ratio_q1']:.3f}-{r['ratio_q3']:.3f}; "
              f"{r['numerator_s_median'] * 1e3:.0f} vs {r['denominator_s_median'] * 1e3:.0f} ms/step)")
    report = {"benchmark": "step_ratio", "batch": args.batch, "results": results, "provenance": provenance(torch.device("cpu"))}
    finish_report(report, args.json)


if __name__ == "__main__":
    from dglsim.allocator import reexec_with_allocator

    reexec_with_allocator(sys.argv)
    main()
