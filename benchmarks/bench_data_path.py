"""Images/s delivered by the data path over images/s consumed by training (goal >= 10).

The data path: gather a shuffled mini-batch of uint8 CIFAR-10 images, random crop with
padding 4, horizontal flip, normalise to float32 (dglsim.data.BatchLoader). Training: one
synchronous DGL step on the network of sync_baselines' default profile. Both run alternately
in one process on the same device.

    DGLSIM_DATA=... python benchmarks/bench_data_path.py [--rounds 20] [--json out.json]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from timing import finish_report, paired_ratio  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--batches-per-round", type=int, default=4)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import torch

    from dglsim.data import BatchLoader, LossyDataWarning, load_cifar10
    from dglsim.models import NetworkSpec, build_network
    from dglsim.recipe.provenance import provenance
    from dglsim.train import OptimConfig, dgl_step

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LossyDataWarning)
        train_set, _ = load_cifar10(download=False)
    loader = BatchLoader(train_set, args.batch, shuffle=True, augment=True, seed=0, drop_last=True)
    batches = loader.epoch(0)
    net = build_network(NetworkSpec(arch="authors_cnn", k=6, width=32, head="mlp_sr"), seed=0)
    opts = [OptimConfig().make(net.module_parameters(j)) for j in range(net.k)]
    x, y = next(batches)

    def deliver() -> None:
        for _ in range(args.batches_per_round):
            next(batches)

    def consume() -> None:
        for _ in range(args.batches_per_round):
            dgl_step(net, opts, x, y)

    # time(consume) / time(deliver) for the same number of images = delivered img/s / consumed img/s
    r = paired_ratio(consume, deliver, rounds=args.rounds)
    per_round = args.batch * args.batches_per_round
    delivered, consumed = per_round / r["denominator_s_median"], per_round / r["numerator_s_median"]
    print(f"data path {delivered:,.0f} img/s, DGL training {consumed:,.0f} img/s: delivered/consumed = {r['ratio_median']:.1f} "
          f"(IQR {r['ratio_q1']:.1f}-{r['ratio_q3']:.1f})")
    report = {"benchmark": "data_path", "batch": args.batch, "result": r | {"delivered_img_s": delivered, "consumed_img_s": consumed},
              "provenance": provenance(torch.device("cpu"))}
    finish_report(report, args.json)


if __name__ == "__main__":
    from dglsim.allocator import reexec_with_allocator

    reexec_with_allocator(sys.argv)
    main()
