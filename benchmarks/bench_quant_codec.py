"""VQ encode+decode time per batch over the module's step time, side by side (goal <= 10% at 10
bits per vector: one-stage VQ with 1,024 codes against residual VQ with 2 x 32 codes, bit-packed).

The module is module 2 of the paper's 4-module network (learning_curve_cnn, width 64): a
128->128 conv3x3 at 16x16 with its MLP-SR head; its output, the activation the link carries, is
[128, 128, 16, 16] (32,768 channel vectors of 128 dims). Modules 0-2 first train for a few
steps on CIFAR-10 so the activations and the codebook are those of real training. Module 2's
input is channels-last in memory, as a decoded input is (so its output is too, and the codec
reads its channel vectors without a copy). One round runs one local step of module 2 and one
encode (nearest codes, EMA update, publication every 10 encodes) plus one decode of one of its
recent outputs (unpacking its codes included).

    python benchmarks/bench_quant_codec.py [--rounds 20] [--threads 1] [--json out.json]

With faiss installed (pip install faiss-cpu; not a dependency), it also times faiss's exact
search (IndexFlatL2, k = 1) against dglsim's dense search on the same codebooks and vectors.

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

    # (label, bits per vector, VQConfig, code format): equal bits side by side
    settings = [
        ("VQ 256 codes", 8, VQConfig(codes=256), "bytes"),
        ("VQ 1024 codes, dense search", 10, VQConfig(codes=1024, search="dense"), "bytes"),
        ("VQ 1024 codes, pruned search", 10, VQConfig(codes=1024, search="pruned"), "bytes"),
        ("RVQ 2x32 codes, bit-packed", 10, VQConfig(codes=32, stages=2, init="kmeans++", lloyd_iters=10), "packed"),
        ("RVQ 2x64 codes, bit-packed", 12, VQConfig(codes=64, stages=2, init="kmeans++", lloyd_iters=10), "packed"),
        ("RVQ 2x64 codes, zstd", 12, VQConfig(codes=64, stages=2, init="kmeans++", lloyd_iters=10), "zstd"),
    ]
    results = []
    for label, bits, vq, fmt in settings:
        codec = Codec(QuantConfig(family="vq", vq=vq, codebook_every=10, code_format=fmt, codebook_update="delta" if vq.stages > 1 else "full"), seed=0)
        for x in outputs[: len(outputs) - 20]:  # the codebook learns on earlier outputs first
            codec.encode(x)
        activation = itertools.cycle(recent)

        def encode_decode():
            codec.decode(codec.encode(next(activation)))

        r = paired_ratio(encode_decode, module_step, rounds=args.rounds)
        r.update(setting=label, bits_per_vector=bits)
        results.append(r)
        print(f"{label:32s} ({bits:2d} bits): encode+decode / module step = {r['ratio_median']:.3f} (IQR {r['ratio_q1']:.3f}-{r['ratio_q3']:.3f}; "
              f"{r['numerator_s_median'] * 1e3:.1f} vs {r['denominator_s_median'] * 1e3:.0f} ms)")
    results += _faiss_against_dense(recent[0], args.rounds)
    report = {"benchmark": "quant_codec", "threads": args.threads, "results": results, "provenance": provenance(torch.device("cpu"))}
    finish_report(report, args.json)


def _faiss_against_dense(activation, rounds: int) -> list[dict]:
    """faiss's exact search over dglsim's dense search, nearest code of every channel vector of
    one activation, codebooks of 32 and 1,024 codes drawn from its vectors; [] without faiss."""
    try:
        import faiss
    except ImportError:
        print("faiss not installed: its comparison is skipped")
        return []
    import torch

    from dglsim.quant import nearest_dense, to_vectors

    faiss.omp_set_num_threads(torch.get_num_threads())
    vectors = to_vectors(activation).contiguous()
    out = []
    for k in (32, 1024):
        book = vectors[torch.randperm(len(vectors), generator=torch.Generator().manual_seed(k))[:k]].contiguous()
        index = faiss.IndexFlatL2(book.shape[1])
        index.add(book.numpy())
        x = vectors.numpy()
        same = (torch.from_numpy(index.search(x, 1)[1][:, 0]) == nearest_dense(vectors, book)).float().mean().item()
        r = paired_ratio(lambda: index.search(x, 1), lambda: nearest_dense(vectors, book), rounds=rounds)
        r.update(setting=f"faiss IndexFlatL2 / dense search, {k} codes", agreement=same)
        out.append(r)
        print(f"faiss / dglsim dense search, {k:4d} codes: {r['ratio_median']:.2f} (IQR {r['ratio_q1']:.2f}-{r['ratio_q3']:.2f}); same code for {100 * same:.2f}% of vectors")
    return out


if __name__ == "__main__":
    from dglsim.allocator import reexec_with_allocator

    reexec_with_allocator(sys.argv)
    main()
