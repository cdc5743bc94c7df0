"""Child process of test_reproducibility: one simulated training from a RunConfig on synthetic
data, with a given torch thread count, optionally beside a busy process; prints the trace's hash."""

import hashlib
import json
import sys

import torch

from dglsim.data import BatchLoader, ImageSet
from dglsim.models import build_network
from dglsim.recipe.cluster import cluster_times, pipeline_spec
from dglsim.recipe.config import RunConfig
from dglsim.study.profiles import resolve_compute_times
from dglsim.study.store import ResultsStore
from dglsim.train.simulated import batch_payload_bytes, train_simulated


def main() -> None:
    settings, threads, store_path = json.loads(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    torch.set_num_threads(threads)
    cfg = RunConfig.from_dict(settings, where="test settings")
    (cfg,), _ = resolve_compute_times([cfg], ResultsStore(store_path), log=lambda m: None)  # a "profile" cluster measures here
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(320) % 10
    data = ImageSet(torch.randint(0, 256, (320, 3, 32, 32), generator=g, dtype=torch.uint8), labels, tuple(map(str, range(10))), (0.5,) * 3, (0.25,) * 3)
    train = BatchLoader(data, cfg.batch_size, shuffle=True, augment=True, seed=cfg.seed, drop_last=True)
    test = BatchLoader(data, 160, shuffle=False, augment=False)
    net = build_network(cfg.network_spec(), seed=cfg.seed)
    tcfg = cfg.train_config()
    spec = pipeline_spec(cfg, list(cluster_times(cfg, net).seconds), batch_payload_bytes(net, tcfg.batch_size), tcfg.epochs * len(train))
    run = train_simulated(net, train, test, tcfg, spec)
    print(hashlib.sha256(run.result.trace.text().encode()).hexdigest())


if __name__ == "__main__":
    main()
