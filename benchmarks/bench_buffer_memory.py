"""Replay-buffer memory of the authors' 6-module CNN (width 128, batch 128) with M = 30 items per
buffer, float32 against quantized links (goal: <= 1% of float32).

Each of the 5 links carries the output of its module (128@32x32, 128@32x32, 256@16x16,
256@16x16, 512@8x8 channels) for a CIFAR-10 batch, from the network after a few DGL steps so
the activations are those of training, not of random weights. Every quantizer encodes a stream
of batches through a real `Codec` (its codebooks learn as in training) and a buffer's bytes are
those `Encoded.to_bytes()` produces:

    buffer bytes = M x (encoded item + int64 labels) + versions x codebook bytes,

where `versions` = ceil(M / codebook_every) + 1 is the most codebook versions M consecutive
items can name (a consumer keeps each version its buffer refers to). Bytes are a property of the
code, not of the machine: the figures are the same anywhere.

    python benchmarks/bench_buffer_memory.py [--items 30] [--json out.json]

Needs CIFAR-10 under $DGLSIM_DATA.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from timing import finish_report  # noqa: E402

SETTINGS = {
    "float32": dict(family="none"),
    "uniform 8-bit": dict(family="uniform", bits=8),
    "VQ 256 codes": dict(family="vq", vq=dict(codes=256)),
    "RVQ 2x32 codes, k-means++, bit-packed, int8 deltas": dict(family="vq", vq=dict(codes=32, stages=2, init="kmeans++", lloyd_iters=10), code_format="packed", codebook_update="delta"),
    "RVQ 2x64 codes, k-means++, bit-packed, int8 deltas": dict(family="vq", vq=dict(codes=64, stages=2, init="kmeans++", lloyd_iters=10), code_format="packed", codebook_update="delta"),
    "RVQ 2x64 codes, k-means++, zstd, int8 deltas": dict(family="vq", vq=dict(codes=64, stages=2, init="kmeans++", lloyd_iters=10), code_format="zstd", codebook_update="delta"),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=30, help="M: items per buffer")
    parser.add_argument("--batches", type=int, default=12, help="batches each codec encodes (the last item is weighed)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import warnings

    import torch

    from dglsim.data import BatchLoader, LossyDataWarning, balanced_subset, load_cifar10
    from dglsim.models import NetworkSpec, build_network
    from dglsim.quant import Codec, QuantConfig, VQConfig
    from dglsim.recipe.provenance import provenance
    from dglsim.train import OptimConfig, local_step

    torch.set_num_threads(2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LossyDataWarning)
        train_set = balanced_subset(load_cifar10(download=False)[0], 200, seed=0)
    net = build_network(NetworkSpec(arch="authors_cnn", k=6, width=128, head="mlp_sr"), seed=0)
    opts = [OptimConfig(lr=0.05).make(net.module_parameters(j)) for j in range(5)]
    loader = BatchLoader(train_set, 128, shuffle=True, augment=True, seed=0, drop_last=True)
    outputs: list[list[torch.Tensor]] = [[] for _ in range(5)]
    labels = None
    for step, (x, y) in enumerate(b for e in range(100) for b in loader.epoch(e)):
        if step == args.batches:
            break
        for j in range(5):
            x, _ = local_step(net.stages[j], net.heads[j], opts[j], x, y)
            outputs[j].append(x)
        labels = y
    label_bytes = labels.numel() * 8

    results = []
    float32_total = None
    for name, setting in SETTINGS.items():
        vq = VQConfig(**setting.get("vq", {}))
        cfg = QuantConfig(**{k: v for k, v in setting.items() if k != "vq"}, vq=vq)
        versions = math.ceil(args.items / cfg.codebook_every) + 1 if cfg.family == "vq" else 0
        links = []
        for j in range(5):
            codec = Codec(cfg, seed=j)
            items = [codec.encode(x) for x in outputs[j]]
            item = items[-1]
            assert len(item.to_bytes()) == item.nbytes
            book = codec.codebook_bytes()
            links.append({"link": j, "shape": list(item.shape), "item_bytes": item.payload_bytes, "codebook_bytes": book,
                          "buffer_bytes": args.items * (item.payload_bytes + label_bytes) + versions * book})
        total = sum(link["buffer_bytes"] for link in links)
        float32_total = float32_total or total
        results.append({"setting": name, "buffer_bytes": total, "share_of_float32": total / float32_total, "links": links})
        print(f"{name:55s} {total / 2**20:10.2f} MiB  {100 * total / float32_total:7.3f}% of float32")
    report = {"benchmark": "buffer_memory", "items_per_buffer": args.items, "batch_size": 128, "results": results, "provenance": provenance(torch.device("cpu"))}
    finish_report(report, args.json)


if __name__ == "__main__":
    main()
