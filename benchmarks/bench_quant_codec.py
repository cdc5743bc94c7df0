"""VQ encode+decode time per batch over the module's step time, side by side (goal <= 10% at K=1024).

The module is module 2 of the paper's 4-module network (learning_curve_cnn, width 64): a
128->128 conv3x3 at 16x16 with its MLP-SR head; its output, the activation the link carries, is
[128, 128, 16, 16] (32,768 channel vectors of 128 dims). Modules 0-2 first train for a few
steps on CIFAR-10 so the activations and the codebook are those of real training. Module 2's
input is channels-last in memory, as a decoded input is (so its output is too, and the codec
reads its channel vectors without a copy). One round runs one local step of module 2 and one
encode (nearest codes, EMA update, publication every 10 encodes) plus one decode of one of its
recent outputs.

    python benchmarks/bench_quant_codec.py [--rounds 20] [--threads 1] [--json out.json]

Needs CIFAR-10 under $DGLSIM_DATA. Like the study runner, it re-executes itself with tcmalloc
preloaded when available.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from timing import finish_report, paired_ratio  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--warm-steps", type=int, default=40, help="DGL steps of modules 0-2 before timing")
    parser.add_argument("--codes", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import warnings

    import torch

    from dglsim.data import BatchLoader, LossyDataWarning, balanced_subset, load_cifar10
    from dglsim.models import NetworkSpec, build_network
    from dglsim.quant import Codec, QuantConfig, VQConfig
    from dglsim.recipe.provenance import provenance
    from dglsim.train import OptimConfig, local_step

    torch.set_num_threads(args.threads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LossyDataWarning)
        train_set = balanced_subset(load_cifar10(download=False)[0], 500, seed=0)
    net = build_network(NetworkSpec(arch="learning_curve_cnn", k=4, head="mlp_sr"), seed=0)
    opts = [OptimConfig(lr=0.05).make(net.module_parameters(j)) for j in range(3)]
    loader = BatchLoader(train_set, 128, shuffle=True, augment=True, seed=0, drop_last=True)
    batches = itertools.islice((b for e in itertools.count() for b in loader.epoch(e)), args.warm_steps)
    inputs, outputs = [], []
    for x, y in batches:
        for j in range(3):
            if j == 2:
                # what module 2 gets from a quantized link: a decoded, channels-last activation
                x = x.contiguous(memory_format=torch.channels_last)
                inputs.append((x, y))
            x, _ = local_step(net.stages[j], net.heads[j], opts[j], x, y)
        outputs.append(x)
    recent = outputs[-20:]
    print(f"module 2 output: {list(recent[0].shape)}, {args.threads} thread(s)")

    step_input = itertools.cycle(inputs[-20:])

    def module_step():
        x, y = next(step_input)
        local_step(net.stages[2], net.heads[2], opts[2], x, y)

    results = []
    for k, search in itertools.product(args.codes, ("dense", "pruned")):
        codec = Codec(QuantConfig(family="vq", vq=VQConfig(codes=k, search=search), codebook_every=10), seed=0)
        for x in outputs[: len(outputs) - 20]:  # the codebook learns on earlier outputs first
            codec.encode(x)
        activation = itertools.cycle(recent)

        def encode_decode():
            codec.decode(codec.encode(next(activation)))

        r = paired_ratio(encode_decode, module_step, rounds=args.rounds)
        r.update(codes=k, search=search)
        results.append(r)
        print(f"K={k:5d} {search:6s}: encode+decode / module step = {r['ratio_median']:.3f} (IQR {r['ratio_q1']:.3f}-{r['ratio_q3']:.3f}; "
              f"{r['numerator_s_median'] * 1e3:.1f} vs {r['denominator_s_median'] * 1e3:.0f} ms)")
    report = {"benchmark": "quant_codec", "threads": args.threads, "results": results, "provenance": provenance(torch.device("cpu"))}
    finish_report(report, args.json)


if __name__ == "__main__":
    from dglsim.allocator import reexec_with_allocator

    reexec_with_allocator(sys.argv)
    main()
