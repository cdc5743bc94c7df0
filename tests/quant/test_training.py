"""Training with vector quantization on the links and in the buffers converges on real data."""

import pytest

from dglsim.data import BatchLoader, balanced_subset
from dglsim.models import NetworkSpec, build_network
from dglsim.quant import Codec, QuantConfig, VQConfig
from dglsim.sim import spec_from_dict
from dglsim.train import OptimConfig, TrainConfig, train_simulated


@pytest.mark.data
@pytest.mark.slow
def test_async_dgl_with_vq_links_and_buffers_learns_cifar10(cifar10):
    """2,000 CIFAR-10 images, 3 epochs of asynchronous DGL (buffers of 3, module 1 slowed 1.5x),
    VQ with K = 32 on both links. The last module beats chance by 5 binomial standard errors of a
    chance-level classifier on 1,000 test images (sqrt(0.1 * 0.9 / 1000) = 0.0095), its training
    loss falls, and the links carried codes: one byte per position of 8 or 16 channels, about 1
    and 0.5 bits per value instead of 32, codebooks included."""
    train_set, test_set = (balanced_subset(s, n, seed=0) for s, n in zip(cifar10, (200, 100)))
    net = build_network(NetworkSpec(arch="authors_cnn", k=3, width=8, head="mlp_sr", head_width=16), seed=0)
    cfg = TrainConfig(epochs=3, batch_size=64, optim=OptimConfig(lr=0.05, lr_decay_every=2))
    loaders = (BatchLoader(train_set, 64, shuffle=True, augment=True, seed=0, drop_last=True), BatchLoader(test_set, 250, shuffle=False, augment=False))
    steps = cfg.epochs * len(loaders[0])
    spec = spec_from_dict({"mode": "async", "workers": 3, "steps": steps, "buffer": 3, "compute": 0.01, "slowdown": [1.0, 1.5, 1.0], "seed": 0})
    codecs = [Codec(QuantConfig(family="vq", vq=VQConfig(codes=32), codebook_every=5), seed=j) for j in range(2)]
    run = train_simulated(net, *loaders, cfg, spec, codecs=codecs)
    final = [r["value"] for r in run.rows if r["metric"] == "test_accuracy" and r["module"] == 2][-1]
    assert final > 0.1 + 5 * (0.1 * 0.9 / len(test_set)) ** 0.5
    losses = run.updates["loss"][run.updates["module"] == 2]
    per_epoch = len(loaders[0])
    assert losses[-per_epoch:].mean() < losses[:per_epoch].mean()
    assert all(link["bits_per_value"] < 2 for link in run.links)
