
import pytest
import torch

from dglsim.data import BatchLoader, ImageSet, balanced_subset
from dglsim.models import NetworkSpec, build_network
from dglsim.train import OptimConfig, TrainConfig, evaluate, local_step, train

SPEC = NetworkSpec(arch="authors_cnn", k=3, width=4, head="mlp", head_width=8, input_shape=(3, 8, 8))


def _toy(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 10
    images = torch.randint(0, 256, (n, 3, 8, 8), generator=g, dtype=torch.uint8)
    images[:, 0] = (labels * 25).to(torch.uint8)[:, None, None]  # a learnable signal in channel 0
    return ImageSet(images, labels, tuple(map(str, range(10))), (0.5,) * 3, (0.25,) * 3)


def _loaders(data, batch=16, seed=0):
    return BatchLoader(data, batch, shuffle=True, augment=True, seed=seed, drop_last=True), BatchLoader(data, 32, shuffle=False, augment=False)


def _params(module):
    return torch.cat([p.detach().flatten() for p in module.parameters()])


CFG = TrainConfig(epochs=2, batch_size=16, optim=OptimConfig(lr=0.05, lr_decay_every=1))


def test_dgl_with_one_module_is_exactly_backprop():
    """With K=1 the local loss is the global loss: DGL and backprop must give the same weights."""
    spec = NetworkSpec(arch="authors_cnn", k=1, width=4, head="mlp", head_width=8, input_shape=(3, 8, 8))
    nets = {m: build_network(spec, seed=1) for m in ("dgl", "backprop")}
    for method, net in nets.items():
        train(method, net, *_loaders(_toy()), CFG)
    assert torch.equal(_params(nets["dgl"].stages), _params(nets["backprop"].stages))
    assert torch.equal(_params(nets["dgl"].heads), _params(nets["backprop"].heads))


def test_greedy_module_zero_equals_dgl_module_zero():
    """Module 0 sees the same data and loss under both methods (DGL's later modules never touch it)."""
    nets = {m: build_network(SPEC, seed=2) for m in ("dgl", "greedy")}
    for method, net in nets.items():
        train(method, net, *_loaders(_toy()), CFG)
    assert torch.equal(_params(nets["dgl"].stages[0]), _params(nets["greedy"].stages[0]))
    assert not torch.equal(_params(nets["dgl"].stages[1]), _params(nets["greedy"].stages[1]))


def test_greedy_freezes_earlier_modules_including_batchnorm_statistics():
    net = build_network(SPEC, seed=3)
    snapshots = []

    def progress(_):
        snapshots.append(torch.cat([_params(net.stages[0]), *(b.flatten() for b in net.stages[0].buffers() if b.dtype.is_floating_point)]))

    train("greedy", net, *_loaders(_toy()), CFG, progress=progress)
    steps_per_module = len(snapshots) // SPEC.k
    frozen = snapshots[steps_per_module - 1 :]  # after module 0's last step, module 0 must not change
    assert all(torch.equal(frozen[0], s) for s in frozen[1:])


@pytest.mark.parametrize("method", ["dgl", "greedy", "backprop"])
def test_same_seed_same_result(method):
    results = []
    for _ in range(2):
        net = build_network(SPEC, seed=4)
        rows = train(method, net, *_loaders(_toy(), seed=4), CFG)
        results.append((_params(net), rows))
    assert torch.equal(results[0][0], results[1][0]) and results[0][1] == results[1][1]


def test_local_step_computes_no_input_gradient_and_updates_only_its_module():
    net = build_network(SPEC, seed=5)
    x = torch.randn(8, 4, 8, 8)  # module 1's input, detached as DGL sends it
    y = torch.randint(0, 10, (8,))
    opt = OptimConfig().make(net.module_parameters(1))
    before = [_params(net.stages[j]) for j in range(3)]
    out, loss = local_step(net.stages[1], net.heads[1], opt, x, y)
    assert x.grad is None and not out.requires_grad and loss.ndim == 0
    after = [_params(net.stages[j]) for j in range(3)]
    assert torch.equal(before[0], after[0]) and torch.equal(before[2], after[2]) and not torch.equal(before[1], after[1])


def test_rows_are_tidy_and_cover_every_evaluation():
    net = build_network(SPEC, seed=6)
    rows = train("dgl", net, *_loaders(_toy()), TrainConfig(epochs=3, batch_size=16, eval_every=2))
    assert all(set(r) == {"epoch", "module", "metric", "value"} for r in rows)
    evaluated = sorted({r["epoch"] for r in rows if r["metric"] == "test_accuracy"})
    assert evaluated == [2, 3]  # every 2 epochs, and always the last
    assert len([r for r in rows if r["metric"] == "train_loss"]) == 3 * SPEC.k


def test_ensemble_of_one_head_is_that_head():
    net = build_network(SPEC, seed=7)
    scores = evaluate(net, BatchLoader(_toy(), 32, shuffle=False, augment=False))
    assert scores["ensemble"][0] == scores["accuracy"][0]


@pytest.mark.data
@pytest.mark.slow
def test_all_three_methods_learn_real_cifar10(cifar10):
    """On 2,000 real CIFAR-10 images and 3 epochs, each method's last module beats chance: its
    accuracy on 1,000 test images exceeds 10% by 5 binomial standard errors of a chance-level
    classifier (sqrt(0.1 * 0.9 / 1000) = 0.0095), and its training loss falls."""
    train_set, test_set = (balanced_subset(s, n, seed=0) for s, n in zip(cifar10, (200, 100)))
    spec = NetworkSpec(arch="authors_cnn", k=3, width=8, head="mlp_sr", head_width=16)
    cfg = TrainConfig(epochs=3, batch_size=64, optim=OptimConfig(lr=0.05, lr_decay_every=2))
    threshold = 0.1 + 5 * (0.1 * 0.9 / len(test_set)) ** 0.5
    for method in ("dgl", "greedy", "backprop"):
        rows = train(method, build_network(spec, seed=0), *_loaders(train_set, batch=64), cfg)
        last = [r for r in rows if r["module"] == 2]
        final = next(r["value"] for r in last if r["metric"] == "test_accuracy" and r["epoch"] == 3)
        losses = [r["value"] for r in last if r["metric"] == "train_loss"]
        assert final > threshold, (method, final)
        assert losses[-1] < losses[0], (method, losses)
