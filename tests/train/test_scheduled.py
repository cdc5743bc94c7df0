"""Scheduled methods trained with real updates in their plans' order: GPipe and 1F1B are
backprop with gradient accumulation, parameter for parameter; DDG, features replay and DNI
follow their papers' update rules, checked against hand-written references."""

import copy

import pytest
import torch
import torch.nn.functional as F

from dglsim.errors import InvalidArgument
from dglsim.models import NetworkSpec, build_network
from dglsim.schedule import ActionCosts, build_plan
from dglsim.train import OptimConfig, TrainConfig, train
from dglsim.train.optim import set_lr
from dglsim.train.scheduled import train_scheduled
from tests.train.test_simulated import _loaders, _params  # the same tiny CIFAR-shaped data

NET = NetworkSpec(arch="authors_cnn", k=3, width=4, head="mlp", head_width=8, input_shape=(3, 8, 8))
CFG = TrainConfig(epochs=3, batch_size=16, optim=OptimConfig(lr=0.05, lr_decay_every=1))
PLAIN = TrainConfig(epochs=1, batch_size=16, optim=OptimConfig(lr=0.05, momentum=0.0, weight_decay=0.0))
PER_EPOCH = 4  # 64 images / batch 16
COSTS = ActionCosts((0.01, 0.02, 0.01))


def _accumulated_backprop(m: int, *, update_every_micro: bool = False):
    """Single-process backprop: each mini-batch's m micro-batches' gradients accumulated (each
    loss weighted by its share of the batch, batch-norm per micro-batch), then one update."""
    net = build_network(NET, seed=3)
    params = [p for s in net.stages for p in s.parameters()] + list(net.heads[-1].parameters())
    opt = CFG.optim.make(params)
    train_loader, _ = _loaders()
    net.train()
    for epoch in range(CFG.epochs):
        set_lr(opt, CFG.optim.lr_at(epoch))
        for x, y in train_loader.epoch(epoch):
            opt.zero_grad(set_to_none=True)
            for xs, ys in zip(x.tensor_split(m), y.tensor_split(m)):
                (F.cross_entropy(net(xs), ys) * len(ys) / len(y)).backward()
                if update_every_micro:
                    opt.step()
                    opt.zero_grad(set_to_none=True)
            opt.step()
    return net


@pytest.mark.parametrize("m", [1, 3, 4])
@pytest.mark.parametrize("method", ["gpipe", "1f1b"])
def test_pipeline_backprop_equals_accumulated_backprop(method, m):
    """Parameter for parameter and buffer for buffer (batch-norm statistics over micro-batches)."""
    reference = _accumulated_backprop(m)
    net = build_network(NET, seed=3)
    run = train_scheduled(build_plan(method, 3, CFG.epochs * PER_EPOCH, 16, m), COSTS, net, *_loaders(), CFG, micro_batches=m)
    assert torch.equal(_params(reference), _params(net))
    assert all(torch.equal(a, b) for a, b in zip(reference.buffers(), net.buffers()))
    assert len(run.losses[2]) == CFG.epochs * PER_EPOCH * m


def test_equivalence_check_sees_a_different_update_rule():
    """Negative controls: an update after every micro-batch, or batch-norm over the whole batch
    (m = 1 against GPipe's m = 4), give other parameters, so the check above can fail."""
    net = build_network(NET, seed=3)
    train_scheduled(build_plan("gpipe", 3, CFG.epochs * PER_EPOCH, 16, 4), COSTS, net, *_loaders(), CFG, micro_batches=4)
    assert not torch.equal(_params(_accumulated_backprop(4, update_every_micro=True)), _params(net))
    assert not torch.equal(_params(_accumulated_backprop(1)), _params(net))


def test_dgl_and_greedy_plans_equal_their_epoch_loops():
    """Synchronous DGL's plan is dglsim.train's DGL; the greedy plan is sequential greedy training."""
    for method, steps in (("dgl", CFG.epochs * PER_EPOCH), ("greedy", CFG.epochs * PER_EPOCH)):
        reference = build_network(NET, seed=3)
        train(method, reference, *_loaders(), CFG)
        net = build_network(NET, seed=3)
        train_scheduled(build_plan(method, 3, steps, 16), COSTS, net, *_loaders(), CFG)
        assert torch.equal(_params(reference), _params(net)), method


def _two_module_reference(replay: bool) -> torch.nn.Module:
    """DDG (replay=False) or features replay on K = 2 by hand, plain SGD: device 1 updates on
    batch t at step t; device 0 applies at step t the gradient device 1 computed for batch t-1,
    through batch t-1's forward with the weights of that forward (DDG) or recomputed with the
    current weights (features replay)."""
    spec = NetworkSpec(arch="authors_cnn", k=2, width=4, head="mlp", head_width=8, input_shape=(3, 8, 8))
    net = build_network(spec, seed=5)
    lr = PLAIN.optim.lr
    s0, s1, head = net.stages[0], net.stages[1], net.heads[1]
    train_loader, _ = _loaders()
    batches = list(train_loader.epoch(0))
    pending = None  # (x, weights of its forward, the gradient device 1 sent for it)
    net.train()
    for t in range(len(batches) + 1):
        if t < len(batches):
            x, y = batches[t]
            w0_now = {n: p.detach().clone() for n, p in s0.named_parameters()}
            with torch.no_grad():
                h = torch.func.functional_call(s0, w0_now, (x,))
            h = h.requires_grad_(True)
            loss = F.cross_entropy(head(s1(h)), y)
            grads = torch.autograd.grad(loss, [h, *s1.parameters(), *head.parameters()])
            g_h, rest = grads[0], grads[1:]
        if pending is not None:  # device 0's delayed update, with batch t-1
            px, pw, pg = pending
            weights = {n: p for n, p in s0.named_parameters()} if replay else {n: w.requires_grad_(True) for n, w in pw.items()}
            out = torch.func.functional_call(s0, weights, (px,))
            g_w = torch.autograd.grad(out, list(weights.values()), pg)
            with torch.no_grad():
                for p, g in zip(s0.parameters(), g_w):
                    p -= lr * g
        if t < len(batches):
            with torch.no_grad():
                for p, g in zip([*s1.parameters(), *head.parameters()], rest):
                    p -= lr * g
            pending = (x, w0_now, g_h)
        else:
            pending = None
    return net, spec


@pytest.mark.parametrize("method,replay", [("ddg", False), ("features_replay", True)])
def test_delayed_gradient_methods_follow_their_update_rule(method, replay):
    reference, spec = _two_module_reference(replay)
    net = build_network(spec, seed=5)
    train_scheduled(build_plan(method, 2, PER_EPOCH, 16), ActionCosts((0.01, 0.01)), net, *_loaders(), PLAIN)
    trained = [p for s in net.stages for p in s.parameters()] + list(net.heads[1].parameters())
    expected = [p for s in reference.stages for p in s.parameters()] + list(reference.heads[1].parameters())
    for a, b in zip(trained, expected):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)  # float32: the same ops, summed in another order
    # negative control: the other method's rule gives other weights
    other, _ = _two_module_reference(not replay)
    assert any(not torch.allclose(a, b, rtol=0, atol=1e-6) for a, b in zip(trained, [p for s in other.stages for p in s.parameters()]))


def test_dni_starts_frozen_and_learns_its_synthesizer():
    """The synthesizer's last layer starts at zero, so module 0's first update is weight decay
    alone (none here): it is unchanged. Module 1's synthesizer learns from the loss's true
    gradient; module 0's target is module 1's backward through module 1's synthetic gradient
    (bootstrapping), nonzero once that synthesizer has learned: after a few steps every module moves."""
    for method in ("dni", "cdni"):
        net = build_network(NET, seed=3)
        before = copy.deepcopy(net)
        one = TrainConfig(epochs=2, batch_size=16, optim=PLAIN.optim)
        plan = build_plan(method, 3, 2 * PER_EPOCH, 16)
        steps = []
        import dglsim.train.scheduled as scheduled

        original = scheduled.ScheduledTraining._dni_step

        def spy(self, a, original=original):
            original(self, a)
            if a.device == 0 and a.step == 0:
                steps.append(_params(self.net.stages[0]).clone())

        scheduled.ScheduledTraining._dni_step = spy
        try:
            train_scheduled(plan, COSTS, net, *_loaders(), one)
        finally:
            scheduled.ScheduledTraining._dni_step = original
        assert torch.equal(steps[0], _params(before.stages[0]))
        assert not torch.equal(_params(net.stages[0]), _params(before.stages[0]))


def test_plan_and_data_must_agree():
    net = build_network(NET, seed=3)
    with pytest.raises(InvalidArgument, match="the plan's steps must be epochs x batches per epoch = 12, got 5"):
        train_scheduled(build_plan("gpipe", 3, 5, 16, 2), COSTS, net, *_loaders(), CFG, micro_batches=2)
    with pytest.raises(InvalidArgument, match="the plan's batch must be the loader's batch size 16, got 32"):
        train_scheduled(build_plan("ddg", 3, 12, 32), COSTS, net, *_loaders(), CFG)
