"""The assumptions' estimates on real training (CIFAR-10 and Imagenette subsets, a tiny network,
seconds per run): finite and well-formed, and the measured min |grad L|^2 under the corollary's
bound computed from them."""

import math

import pytest

from dglsim.data import BatchLoader, balanced_subset
from dglsim.models import NetworkSpec, build_network
from dglsim.theory.training import estimate_assumptions, train_with_snapshots
from dglsim.train import OptimConfig, TrainConfig


def _run(train_set, test_set, input_shape):
    net = build_network(NetworkSpec(arch="authors_cnn", k=3, width=8, head="mlp_sr", head_width=16, input_shape=input_shape), seed=0)
    cfg = TrainConfig(epochs=2, batch_size=50, optim=OptimConfig(lr=0.05, lr_decay_every=1))
    snapshots = train_with_snapshots(net, BatchLoader(train_set, 50, shuffle=True, augment=True, seed=0, drop_last=True), cfg, every=8)
    probe = next(iter(BatchLoader(test_set, 100, shuffle=False, augment=False).epoch(0)))
    return snapshots, estimate_assumptions(net, snapshots, probe, batch_size=50, hessian_iters=8, vectors=400)


@pytest.mark.data
@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["cifar10", "imagenette"])
def test_estimates_are_finite_and_the_measured_gradient_sits_under_the_bound(dataset, request):
    train, test = request.getfixturevalue(dataset)
    shape = (3, 32, 32) if dataset == "cifar10" else (3, 64, 64)
    snapshots, rows = _run(balanced_subset(train, 40, seed=0), balanced_subset(test, 10, seed=0), shape)
    assert len(snapshots) >= 3
    assert all(math.isfinite(r["value"]) for r in rows)
    by = {(r["module"], r["metric"], r["step"]): r["value"] for r in rows}
    for j in range(3):
        assert by[(j, "L_estimate", None)] > 0 and by[(j, "G_estimate", None)] > 0
        for snap in snapshots[1:]:
            assert by[(j, "min_grad_norm2", snap.step)] <= by[(j, "bound", snap.step)]
        if j > 0:  # lower bounds of an L1 distance: within [0, 2]
            assert all(0 <= by[(j, m, s.step)] <= 2 for s in snapshots for m in ("c_mmd", "c_tv_codes"))
