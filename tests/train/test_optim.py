"""The optimizers a run can choose: SGD (the paper's CIFAR runs) and Adam (its DNI comparison)."""

import pytest
import torch

from dglsim.errors import InvalidArgument
from dglsim.study import RunConfig
from dglsim.train import OptimConfig


def _two_steps(cfg: OptimConfig, grads: list[torch.Tensor]) -> torch.Tensor:
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5]))
    opt = cfg.make([w])
    for g in grads:
        w.grad = g.clone()
        opt.step()
    return w.detach()


def _adam_by_hand(lr, beta1, beta2, wd, grads, eps=1e-8):
    """Kingma & Ba (2015), algorithm 1, with L2 weight decay added to the gradient."""
    w = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    m = torch.zeros(3, dtype=torch.float64)
    v = torch.zeros(3, dtype=torch.float64)
    for t, g in enumerate(grads, start=1):
        g = g.double() + wd * w
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        w = w - lr * (m / (1 - beta1**t)) / ((v / (1 - beta2**t)).sqrt() + eps)
    return w


GRADS = [torch.tensor([0.3, -1.0, 2.0]), torch.tensor([-0.1, 0.4, 1.5])]


def test_adam_follows_its_update_rule_with_momentum_as_beta1():
    cfg = OptimConfig(optimizer="adam", lr=1e-2, momentum=0.8, weight_decay=1e-3)
    got = _two_steps(cfg, GRADS).double()
    # float32 arithmetic against float64: a few ulps of the weights (about 1e-7 relative)
    assert torch.allclose(got, _adam_by_hand(1e-2, 0.8, 0.999, 1e-3, GRADS), rtol=0, atol=1e-6)
    # negative controls: Adam's default beta1 (not the momentum key) and SGD give other weights
    assert not torch.allclose(got, _adam_by_hand(1e-2, 0.9, 0.999, 1e-3, GRADS), rtol=0, atol=1e-6)
    assert not torch.allclose(got, _two_steps(OptimConfig(lr=1e-2, momentum=0.8, weight_decay=1e-3), GRADS).double(), rtol=0, atol=1e-6)


def test_optimizer_choice_is_checked_and_nesterov_is_sgd_only():
    with pytest.raises(InvalidArgument, match=r"'optimizer' of OptimConfig must be one of \['sgd', 'adam'\], got 'rmsprop'"):
        OptimConfig(optimizer="rmsprop")
    with pytest.raises(InvalidArgument, match="'nesterov' of OptimConfig must be False when optimizer is 'adam'"):
        RunConfig(optimizer="adam", nesterov=True)
    with pytest.raises(InvalidArgument, match="'optimizer' of RunConfig must be 'sgd' when theory is true"):
        RunConfig(method="simulated", optimizer="adam", momentum=0.0, weight_decay=0.0, augment=False, theory=True, reference_epochs=5, epochs=1)


def test_the_optimizer_key_leaves_stored_keys_alone_at_its_default():
    """Configs written before the key existed keep their key (and their stored results)."""
    assert RunConfig().key() == RunConfig(optimizer="sgd").key()
    assert RunConfig(optimizer="adam").key() != RunConfig().key()


def test_milestones_decay_the_rate_from_each_listed_epoch():
    cfg = OptimConfig(lr=0.01, lr_decay=0.1, lr_milestones=(149, 224))
    assert [cfg.lr_at(e) for e in (0, 148, 149, 223, 224, 299)] == pytest.approx([0.01, 0.01, 1e-3, 1e-3, 1e-4, 1e-4])
    assert [e for e in range(300) if cfg.starts_decay(e)] == [149, 224]
    assert [e for e in range(50) if OptimConfig(lr_decay_every=15).starts_decay(e)] == [15, 30, 45]
    with pytest.raises(InvalidArgument, match="'lr_decay_every' of OptimConfig must be left at its default 15 when lr_milestones is set"):
        OptimConfig(lr_milestones=(10,), lr_decay_every=5)
    with pytest.raises(InvalidArgument, match="'lr_milestones' of OptimConfig must be None or a tuple of ints >= 1, strictly increasing"):
        OptimConfig(lr_milestones=(20, 10))


@pytest.mark.parametrize("method", ["dgl", "greedy", "backprop"])
def test_epoch_loops_start_a_fresh_optimizer_at_each_decay_when_asked(method):
    """reset_on_decay changes the weights only when a decay falls inside the run (the control:
    a run whose rate never decays gives the same weights with and without it)."""
    from dglsim.models import NetworkSpec, build_network
    from dglsim.train import TrainConfig, train
    from tests.train.test_methods import _loaders, _params, _toy

    spec = NetworkSpec(arch="authors_cnn", k=2, width=4, head="mlp", head_width=8, input_shape=(3, 8, 8))

    def weights(every: int, reset: bool) -> torch.Tensor:
        net = build_network(spec, seed=3)
        cfg = TrainConfig(epochs=2, batch_size=16, optim=OptimConfig(lr=0.05, lr_decay=0.5, lr_decay_every=every, reset_on_decay=reset))
        train(method, net, *_loaders(_toy()), cfg)
        return _params(net.stages)

    assert not torch.equal(weights(1, True), weights(1, False))
    assert torch.equal(weights(5, True), weights(5, False))
