"""Real multi-process DGL against one process, side by side, and gloo's point-to-point bandwidth.

Each round runs, in alternating order:
- K ranks (dglsim.ranks, gloo, one thread each) training synchronous DGL;
- one process with one thread running the same synchronous DGL sequentially (same network,
  data, seed and updates), timing each module's steps;
- one process with two threads (intra-op parallelism) running the same.
Times are of the epochs after the first (start-up, first-touch allocation and, for the ranks,
the pipeline's fill excluded): for the ranks, the last rank's epochs 2.. in the trace (from its
first update of epoch 2 to its last finish), when every item it takes has passed every rank;
for one process, its epochs 2.. The same updates run in both.

Reported per round and as medians: speedup = one-thread time / K-rank time; the ideal, (sum of
module times) / (max module time) from the one-thread run; efficiency = speedup / ideal (goal
>= 0.95); and K ranks against the two-thread process.

Bandwidth: two processes ping-pong float32 tensors of activation sizes over gloo (loopback);
one-way time = round trip / 2 per size; latency and bandwidth read from the small and the large sizes.

    python benchmarks/bench_dist.py [--rounds 3] [--k 2] [--json out.json]

Needs CIFAR-10 under $DGLSIM_DATA.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from timing import finish_report  # noqa: E402

SIZES = [2**16, 2**20, 2**22, 16_777_216, 2**26]  # bytes; 16.8 MB is a [128, 64, 32, 32] float32 batch


def _single_process(cfg, threads: int) -> tuple[float, list[float]]:
    """Seconds of epochs 2.. of sequential synchronous DGL, and each module's share of them."""
    import torch

    from dglsim.data import BatchLoader
    from dglsim.models import build_network
    from dglsim.recipe.data import run_data
    from dglsim.train.optim import set_lr
    from dglsim.train.steps import local_step

    torch.set_num_threads(threads)
    net = build_network(cfg.network_spec(), seed=cfg.seed)
    tcfg = cfg.train_config()
    train_set, _ = run_data(cfg)
    loader = BatchLoader(train_set, tcfg.batch_size, shuffle=True, augment=cfg.augment, seed=cfg.seed, drop_last=True)
    optimizers = [tcfg.optim.make(net.module_parameters(j)) for j in range(net.k)]
    module_s = [0.0] * net.k
    start = None
    for epoch in range(tcfg.epochs):
        if epoch == 1:
            start, module_s = time.perf_counter(), [0.0] * net.k
        for opt in optimizers:
            set_lr(opt, tcfg.optim.lr_at(epoch))
        for x, y in loader.epoch(epoch):
            for j in range(net.k):
                tic = time.perf_counter()
                x, _ = local_step(net.stages[j], net.heads[j], optimizers[j], x, y)
                module_s[j] += time.perf_counter() - tic
    return time.perf_counter() - start, module_s


def _ranks(cfg, tmp: Path) -> float:
    from dglsim.ranks.run import run_real

    real = run_real(cfg, tmp, threads=1)
    trace, per_epoch = real.trace.to_array(), len(real.results["updates"]["0"]["loss"]) // cfg.epochs
    last = cfg.k - 1
    starts = trace["time"][(trace["worker"] == last) & (trace["action"] == "start")]
    finishes = trace["time"][(trace["worker"] == last) & (trace["action"] == "finish")]
    return float(finishes[-1] - starts[per_epoch])


def _pingpong(rank: int, port: int, reps: int, out) -> None:
    import datetime

    import torch
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=2, timeout=datetime.timedelta(seconds=60))
    results = {}
    for size in SIZES:
        t = torch.zeros(size // 4)
        times = []
        for i in range(reps + 2):
            dist.barrier()
            tic = time.perf_counter()
            if rank == 0:
                dist.send(t, 1)
                dist.recv(t, 1)
            else:
                dist.recv(t, 0)
                dist.send(t, 0)
            if i >= 2:
                times.append((time.perf_counter() - tic) / 2)
        results[size] = statistics.median(times)
    if rank == 0:
        out.put(results)
    dist.barrier()
    dist.destroy_process_group()


def bandwidth(reps: int = 10) -> dict:
    import numpy as np
    import torch.multiprocessing as mp

    from dglsim.ranks.launch import free_port

    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    port = free_port()
    procs = [ctx.Process(target=_pingpong, args=(r, port, reps, out)) for r in range(2)]
    for p in procs:
        p.start()
    one_way = out.get(timeout=300)
    for p in procs:
        p.join()
    # Loopback is not linear in size (64 MiB copies fall out of cache), so no affine fit: the
    # latency is bounded by the one-way time of the smallest message, the bandwidth is the
    # median rate of messages of 1 MiB and more.
    effective = {s: s / one_way[s] for s in SIZES}
    return {"one_way_s": {str(s): one_way[s] for s in SIZES}, "latency_s": one_way[SIZES[0]],
            "bandwidth_Bps": float(np.median([effective[s] for s in SIZES if s >= 2**20])), "effective_Bps": {str(s): v for s, v in effective.items()}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--k", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import warnings

    from dglsim.data import LossyDataWarning
    from dglsim.recipe.config import RunConfig
    from dglsim.recipe.provenance import provenance

    warnings.simplefilter("ignore", LossyDataWarning)
    # The paper's network in K modules, 1,000 CIFAR-10 images, batches of 128, 3 epochs.
    cfg = RunConfig(method="distributed", pipeline="sync", k=args.k, arch="learning_curve_cnn", head="mlp_sr", batch_size=128,
                    train_per_class=100, test_per_class=10, epochs=3, lr=0.05, in_flight=2)
    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.rounds):
            sides = {}
            order = ("ranks", "one", "two") if i % 2 == 0 else ("two", "one", "ranks")
            for side in order:
                if side == "ranks":
                    sides["ranks"] = _ranks(cfg, Path(tmp) / f"r{i}")
                else:
                    sides[side] = _single_process(cfg, 1 if side == "one" else 2)
            one_s, module_s = sides["one"]
            ideal = sum(module_s) / max(module_s)
            speedup = one_s / sides["ranks"]
            rounds.append({"ranks_s": sides["ranks"], "one_thread_s": one_s, "two_threads_s": sides["two"][0], "module_s": module_s,
                           "ideal": ideal, "speedup": speedup, "efficiency": speedup / ideal, "vs_two_threads": sides["two"][0] / sides["ranks"]})
            print(f"round {i}: K={args.k} ranks {sides['ranks']:.2f} s, one thread {one_s:.2f} s (modules " + ", ".join(f"{m:.2f}" for m in module_s)
                  + f"), two threads {sides['two'][0]:.2f} s: speedup {speedup:.3f} of ideal {ideal:.3f} = {speedup / ideal:.1%}; "
                  f"against two threads {sides['two'][0] / sides['ranks']:.3f}x", flush=True)
    summary = {k: statistics.median(r[k] for r in rounds) for k in ("speedup", "ideal", "efficiency", "vs_two_threads", "ranks_s", "one_thread_s", "two_threads_s")}
    print("median: " + ", ".join(f"{k} {v:.3f}" for k, v in summary.items()))
    bw = bandwidth()
    print("gloo one-way: " + ", ".join(f"{int(s) / 2**20:.2f} MiB {t * 1e3:.2f} ms ({int(s) / t / 1e9:.2f} GB/s)" for s, t in bw["one_way_s"].items())
          + f"; latency <= {bw['latency_s'] * 1e6:.0f} us (64 KiB message), bandwidth {bw['bandwidth_Bps'] / 1e9:.2f} GB/s (median, >= 1 MiB)")
    import torch

    finish_report({"config": cfg.as_dict(), "rounds": rounds, "median": summary, "bandwidth": bw, "provenance": provenance(torch.device("cpu"))}, args.json)


if __name__ == "__main__":
    from dglsim.allocator import reexec_with_allocator

    reexec_with_allocator([__file__, *sys.argv[1:]])
    main()
