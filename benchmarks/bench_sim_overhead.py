"""Overhead of training in simulated time against a bare loop doing the same updates in the
same order (goal <= 5%).

The simulated run (dglsim.train.simulated.train_simulated: event engine, buffers, trace,
per-update logging) is run once to fix the schedule: which module updates when, on which
item. The bare loop replays that schedule with nothing but local steps and a dict of
payloads. Both start from the same initial weights and end with identical weights (asserted),
so they do exactly the same arithmetic; the ratio of their times is the simulator's overhead.

    DGLSIM_DATA=... python benchmarks/bench_sim_overhead.py [--rounds 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import copy
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from timing import finish_report, paired_ratio  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--per-class", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import torch

    from dglsim.data import BatchLoader, LossyDataWarning, balanced_subset, load_cifar10
    from dglsim.models import NetworkSpec, build_network
    from dglsim.recipe.provenance import provenance
    from dglsim.sim import spec_from_dict
    from dglsim.train import OptimConfig, TrainConfig, local_step
    from dglsim.train.optim import set_lr
    from dglsim.train.simulated import train_simulated

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LossyDataWarning)
        train_set, test_set = load_cifar10(download=False)
    data = balanced_subset(train_set, args.per_class, seed=0)
    loader = BatchLoader(data, 128, shuffle=True, augment=True, seed=0, drop_last=True)
    test = BatchLoader(balanced_subset(test_set, 10, seed=0), 500, shuffle=False, augment=False)
    cfg = TrainConfig(epochs=args.epochs, batch_size=128, optim=OptimConfig())
    initial = build_network(NetworkSpec(arch="authors_cnn", k=6, width=16, head="mlp_sr"), seed=0)
    spec = spec_from_dict({"mode": "async", "workers": 6, "steps": cfg.epochs * len(loader), "seed": 0, "buffer": 5,
                           "compute": {"kind": "lognormal", "mean": 0.01, "cv": 0.2}, "slowdown": [1, 1, 1.5, 1, 1, 1]})

    # The schedule: per update, (module, consumed item, produced item), from one simulated run.
    rows = train_simulated(copy.deepcopy(initial), loader, test, cfg, spec).result.trace.to_array()
    starts = rows[rows["action"] == "start"]
    sends = {j: iter(rows[(rows["action"] == "send") & (rows["worker"] == j)]["item"].tolist()) for j in range(6)}
    schedule = [(int(r["worker"]), int(r["item"]), next(sends[int(r["worker"])], -1)) for r in starts]
    last_use = {item: i for i, (j, item, _) in enumerate(schedule) if j > 0}

    def bare(net) -> None:
        optimizers = [cfg.optim.make(net.module_parameters(j)) for j in range(net.k)]
        done = [0] * net.k
        epoch, batches = 0, loader.epoch(0)
        payloads = {}
        for i, (j, consumed, produced) in enumerate(schedule):
            if j == 0:
                batch = next(batches, None)
                if batch is None:
                    epoch += 1
                    batches = loader.epoch(epoch)
                    batch = next(batches)
                x, y = batch
            else:
                x, y = payloads[consumed]
                if last_use[consumed] == i:
                    del payloads[consumed]
            set_lr(optimizers[j], cfg.optim.lr_at(done[j] // len(loader)))
            out, _ = local_step(net.stages[j], net.heads[j], optimizers[j], x, y)
            done[j] += 1
            if j < net.k - 1:
                payloads[produced] = (out, y)

    a, b = copy.deepcopy(initial), copy.deepcopy(initial)
    train_simulated(a, loader, test, cfg, spec)
    bare(b)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters())), "the bare loop must do the same updates"

    r = paired_ratio(lambda: train_simulated(copy.deepcopy(initial), loader, test, cfg, spec), lambda: bare(copy.deepcopy(initial)),
                     rounds=args.rounds, warmup=1)
    print(f"simulated training / bare loop = {r['ratio_median']:.4f} (IQR {r['ratio_q1']:.4f}-{r['ratio_q3']:.4f}): overhead "
          f"{(r['ratio_median'] - 1) * 100:+.2f}%; {len(schedule)} updates, {r['numerator_s_median']:.2f} vs {r['denominator_s_median']:.2f} s")
    finish_report({"benchmark": "sim_overhead", "updates": len(schedule), "result": r, "provenance": provenance(torch.device("cpu"))}, args.json)


if __name__ == "__main__":
    from dglsim.allocator import reexec_with_allocator

    reexec_with_allocator(sys.argv)
    main()
