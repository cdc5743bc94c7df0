"""DGL trained in simulated time: the simulator orders real updates."""

import numpy as np
import pytest
import torch

from dglsim.data import BatchLoader, ImageSet
from dglsim.errors import InvalidArgument
from dglsim.models import NetworkSpec, build_network
from dglsim.sim import spec_from_dict
from dglsim.train import OptimConfig, TrainConfig, batch_payload_bytes, profile_modules, train, train_simulated

NET = NetworkSpec(arch="authors_cnn", k=3, width=4, head="mlp", head_width=8, input_shape=(3, 8, 8))
CFG = TrainConfig(epochs=3, batch_size=16, optim=OptimConfig(lr=0.05, lr_decay_every=1))
PER_EPOCH = 4  # 64 images / batch 16


def _data():
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(64) % 10
    images = torch.randint(0, 256, (64, 3, 8, 8), generator=g, dtype=torch.uint8)
    images[:, 0] = (labels * 25).to(torch.uint8)[:, None, None]
    return ImageSet(images, labels, tuple(map(str, range(10))), (0.5,) * 3, (0.25,) * 3)


def _loaders():
    data = _data()
    return BatchLoader(data, 16, shuffle=True, augment=True, seed=0, drop_last=True), BatchLoader(data, 32, shuffle=False, augment=False)


def _spec(mode, **extra):
    return spec_from_dict({"mode": mode, "workers": 3, "steps": CFG.epochs * PER_EPOCH, "seed": 1,
                           "compute": {"kind": "gamma", "mean": 0.01, "cv": 0.5}, "latency": {"kind": "exponential", "mean": 0.002}} | extra)


def _params(net):
    return torch.cat([p.detach().flatten() for p in net.parameters()])


@pytest.mark.parametrize("extra", [{}, {"buffer": 1}, {"buffer": 3, "slowdown": [1.0, 3.0, 1.0]}])
def test_sync_mode_reproduces_synchronous_dgl_exactly(extra):
    """Whatever the interleaving the simulator picks, sync mode gives every module the same
    inputs in the same order as dglsim.train's synchronous DGL: identical parameters."""
    reference = build_network(NET, seed=3)
    train("dgl", reference, *_loaders(), CFG)
    simulated = build_network(NET, seed=3)
    run = train_simulated(simulated, *_loaders(), CFG, _spec("sync", **extra))
    assert torch.equal(_params(reference), _params(simulated))
    assert run.result.updates == [CFG.epochs * PER_EPOCH] * 3


def test_paper_mode_semantics():
    """The authors' buffer experiment: buffers of M whole mini-batches with labels, least used
    then freshest with a reuse cap, warm-up 0,0,1,1,2,2, each module's learning rate decays with
    its own epochs, and a module past its epochs stops updating but keeps forwarding."""
    net = build_network(NET, seed=4)
    spec = _spec("paper", buffer=2, max_reuse=3, slowdown=[1.0, 1.0, 2.0])
    run = train_simulated(net, *_loaders(), CFG, spec)
    up = run.updates
    assert up["module"][:6].tolist() == [0, 0, 1, 1, 2, 2]
    for j in range(3):
        mine = up["module"] == j
        assert mine.sum() == CFG.epochs * PER_EPOCH
        expected_lr = [CFG.optim.lr_at(n // PER_EPOCH) for n in range(CFG.epochs * PER_EPOCH)]
        np.testing.assert_allclose(up["lr"][mine], expected_lr)
        assert (up["reuse"][mine] <= 3).all()
    rows = run.result.trace.to_array()
    forwards = rows[rows["action"] == "forward"]
    assert len(forwards) > 0
    for j in set(forwards["worker"].tolist()):
        last_update = rows[(rows["worker"] == j) & (rows["action"] == "finish")]["time"].max()
        assert (forwards[forwards["worker"] == j]["time"] > last_update).all()
    # whole mini-batches with their labels: item bytes = batch x activation x 4 + batch x 8
    assert run.item_bytes[:2] == batch_payload_bytes(net, 16)[:2]
    assert run.buffer_bytes == [0, 2 * run.item_bytes[0], 2 * run.item_bytes[1]]


def test_finished_module_keeps_its_parameters_while_forwarding():
    net = build_network(NET, seed=5)
    spec = _spec("paper", buffer=2, slowdown=[1.0, 1.0, 4.0])
    seen = {}
    original = net.stages[0].forward

    def watch(x):  # record module 0's parameters every time it runs after its budget
        seen.setdefault("params", []).append(_params(net.stages[0]).clone())
        return original(x)

    net.stages[0].forward = watch
    run = train_simulated(net, *_loaders(), CFG, spec)
    budget = CFG.epochs * PER_EPOCH
    after = seen["params"][budget:]  # calls past the budget are forwards
    assert len(after) > 0 and all(torch.equal(after[0], p) for p in after)
    assert run.result.updates[0] == budget


@pytest.mark.parametrize("mode", ["sync", "async", "paper"])
def test_staleness_in_a_training_run_is_producer_updates_since_production(mode):
    run = train_simulated(build_network(NET, seed=6), *_loaders(), CFG, _spec(mode, buffer=2, slowdown=[1.0, 2.5, 1.0]))
    rows = run.result.trace.to_array()
    for j in (1, 2):
        for at in np.flatnonzero((rows["worker"] == j) & (rows["action"] == "start")):
            produced = int(((rows["worker"][:at] == j - 1) & (rows["action"][:at] == "finish")).sum())
            assert rows["staleness"][at] == produced - rows["version"][at]
    np.testing.assert_array_equal(run.updates["staleness"], rows[rows["action"] == "start"]["staleness"])


def test_slowed_module_with_empty_buffer_never_trains_on_unreceived_data():
    """Module 0 slowed 5x, buffers of 1: modules 1 and 2 wait for data and each input they train on
    is an output their producer actually sent, after it arrived."""
    net = build_network(NET, seed=7)
    run = train_simulated(net, *_loaders(), CFG, _spec("async", buffer=1, slowdown=[5.0, 1.0, 1.0]))
    rows = run.result.trace.to_array()
    for j in (1, 2):
        arrived = {}
        for r in rows[rows["worker"] == j]:
            if r["action"] == "arrive":
                arrived[int(r["item"])] = r["time"]
            elif r["action"] == "start":
                assert int(r["item"]) in arrived and arrived[int(r["item"])] <= r["time"]
    first_start_1 = rows[(rows["worker"] == 1) & (rows["action"] == "start")]["time"].min()
    first_send_0 = rows[(rows["worker"] == 0) & (rows["action"] == "send")]["time"].min()
    assert first_start_1 >= first_send_0


def test_evaluations_at_intervals_of_simulated_time_and_at_the_end():
    run = train_simulated(build_network(NET, seed=8), *_loaders(), CFG, _spec("async", buffer=2), eval_interval=0.03)
    times = sorted({r["time"] for r in run.rows})
    assert times[:-1] == pytest.approx([0.03 * (i + 1) for i in range(len(times) - 1)])
    assert times[-1] == pytest.approx(run.result.makespan)
    assert {r["metric"] for r in run.rows} == {"test_accuracy", "ensemble_accuracy"}
    assert all(0 <= r["value"] <= 1 for r in run.rows)


def test_observe_sees_every_evaluation_with_the_updates_done_so_far():
    seen = []
    run = train_simulated(build_network(NET, seed=8), *_loaders(), CFG, _spec("async", buffer=2), eval_interval=0.03,
                          observe=lambda t, done: seen.append((t, tuple(done))))
    assert [t for t, _ in seen] == sorted({r["time"] for r in run.rows})
    for t, done in seen:  # the updates that started before t (each finishes before the next of its module starts)
        started = [int(((run.updates["module"] == j) & (run.updates["time"] < t)).sum()) for j in range(3)]
        assert all(s - 1 <= d <= s for d, s in zip(done, started))
    assert seen[-1][1] == (CFG.epochs * PER_EPOCH,) * 3
    np.testing.assert_array_equal(run.updates["version"], run.result.trace.to_array()["version"][run.result.trace.to_array()["action"] == "start"])


def test_spec_must_match_the_network_and_the_epochs():
    net = build_network(NET, seed=9)
    with pytest.raises(InvalidArgument, match="'workers' of the spec must equal the network's K = 3, got 4"):
        train_simulated(net, *_loaders(), CFG, spec_from_dict({"mode": "sync", "workers": 4, "steps": 12, "compute": 0.01}))
    with pytest.raises(InvalidArgument, match="'steps' of the spec must be epochs x batches per epoch = 12, got 5"):
        train_simulated(net, *_loaders(), CFG, spec_from_dict({"mode": "sync", "workers": 3, "steps": 5, "compute": 0.01}))


def test_profiling_times_every_module_and_leaves_the_network_untouched():
    net = build_network(NET, seed=10)
    before = _params(net).clone()
    seconds = profile_modules(net, 16, repeats=3)
    assert len(seconds) == 3 and all(s > 0 for s in seconds)
    assert torch.equal(before, _params(net))


@pytest.mark.parametrize("mode", ["async", "paper"])
def test_each_evaluation_time_appears_once_and_the_last_is_the_end(mode):
    interval = 0.01 if mode == "async" else 4.0
    run = train_simulated(build_network(NET, seed=11), *_loaders(), CFG, _spec(mode, buffer=2), eval_interval=interval)
    last_module = [r for r in run.rows if r["metric"] == "test_accuracy" and r["module"] == 2]
    times = [r["time"] for r in last_module]
    assert len(times) == len(set(times)) and times[-1] == run.result.makespan
    # event modes: the time of the last event; paper mode: the number of global steps taken
    assert run.result.makespan == run.result.trace.rows[-1][0] + (1 if mode == "paper" else 0)


def test_float_codecs_change_nothing_and_report_the_float_bytes():
    """Codecs of family "none" send the activations themselves: sync mode still reproduces
    synchronous DGL bit for bit, and every link reports 32 bits per value."""
    from dglsim.quant import Codec, QuantConfig

    reference = build_network(NET, seed=3)
    train("dgl", reference, *_loaders(), CFG)
    simulated = build_network(NET, seed=3)
    run = train_simulated(simulated, *_loaders(), CFG, _spec("sync", buffer=2), codecs=[Codec(QuantConfig()) for _ in range(2)])
    assert torch.equal(_params(reference), _params(simulated))
    assert [link["bits_per_value"] for link in run.links] == [32.0, 32.0]
    assert run.item_bytes[:2] == batch_payload_bytes(simulated, 16)[:2]


def test_vq_links_send_codes_and_count_codebooks_in_bytes_and_buffers():
    from dglsim.quant import Codec, Encoded, QuantConfig, VQConfig

    net = build_network(NET, seed=6)
    cfg = QuantConfig(family="vq", vq=VQConfig(codes=16), codebook_every=4)
    codecs = [Codec(cfg, seed=j) for j in range(2)]
    seen = []
    original = codecs[1].decode
    codecs[1].decode = lambda item: seen.append(item) or original(item)
    run = train_simulated(net, *_loaders(), CFG, _spec("async", buffer=3), codecs=codecs, eval_interval=0.05)
    assert seen and all(isinstance(item, Encoded) for item in seen)
    steps = CFG.epochs * PER_EPOCH
    shapes = net.output_shapes()
    for j, link in enumerate(run.links):
        c, h, w = shapes[j]
        codes_bytes = 16 * h * w  # one uint8 code per position of a 16-item batch
        book = 16 * c * 4
        publications = 1 + steps // 4 - (1 if steps % 4 == 0 else 0)  # the first, then every 4 encodes (one left unsent at the end)
        assert link["items"] == steps
        assert link["codebook_bytes"] == publications * book
        assert link["activation_bytes"] == steps * codes_bytes + publications * book
        assert link["compression"] == pytest.approx(steps * 16 * c * h * w * 4 / link["activation_bytes"])
        # the consumer's buffer holds at most 3 items (codes + labels) and the codebooks they refer to
        item = codes_bytes + 16 * 8
        assert 3 * item + book <= run.buffer_bytes[j + 1] <= 3 * item + 3 * book
    metrics = {r["metric"] for r in run.rows if "link" in r}
    assert {"relative_distortion", "relative_gradient_error", "perplexity", "unused_codes", "codebook_drift"} <= metrics
    # evaluated as trained (through the quantized links) and with float activations
    final = {r["metric"]: r["value"] for r in run.rows if r.get("module") == 2 and r["time"] == run.result.makespan}
    assert {"test_accuracy", "unquantized_test_accuracy"} <= set(final)


def test_evaluation_through_links_sees_what_the_links_do():
    from dglsim.train.evaluate import evaluate

    net = build_network(NET, seed=2)
    test = _loaders()[1]
    assert evaluate(net, test, links=[lambda x: x, lambda x: x]) == evaluate(net, test)
    x = next(iter(test.epoch(0)))[0]
    blind = net.all_logits(x, links=[torch.zeros_like, torch.zeros_like])
    assert torch.equal(blind[0], net.all_logits(x)[0])  # module 0 is before any link
    assert torch.allclose(blind[2], net.heads[2](net.stages[2](torch.zeros(x.shape[0], *net.output_shapes()[1]))))


def test_codecs_must_be_one_per_link():
    from dglsim.quant import Codec, QuantConfig

    with pytest.raises(InvalidArgument, match="'codecs' of train_simulated must be one per link \\(K-1 = 2\\), got 1"):
        train_simulated(build_network(NET, seed=0), *_loaders(), CFG, _spec("sync"), codecs=[Codec(QuantConfig())])


def test_a_fresh_optimizer_at_each_decay_changes_only_what_follows_the_decay():
    losses = {}
    for reset in (False, True):
        cfg = TrainConfig(epochs=3, batch_size=16, optim=OptimConfig(lr=0.05, lr_decay_every=2, reset_on_decay=reset))
        net = build_network(NET, seed=0)
        train_loader, test_loader = _loaders()
        run = train_simulated(net, train_loader, test_loader, cfg, _spec("sync"))
        losses[reset] = run.updates["loss"][run.updates["module"] == 0]
    before = 2 * PER_EPOCH  # module 0's updates before its first decay
    np.testing.assert_array_equal(losses[False][:before + 1], losses[True][:before + 1])  # the first decayed step's loss is computed before its update
    assert not np.array_equal(losses[False][before + 1:], losses[True][before + 1:])


def test_the_ensembles_weight_softmax_outputs_or_raw_logits_by_two_to_the_i():
    from dglsim.models import eval_mode
    from dglsim.train.evaluate import evaluate

    net = build_network(NET, seed=0)
    _, test_loader = _loaders()
    with torch.no_grad(), eval_mode(net):
        batches = list(test_loader.epoch(0))
        x, y = torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])
        outs = net.all_logits(x)
    for mode, transform in (("softmax", lambda o: o.softmax(1)), ("logits", lambda o: o)):
        expected = [float((sum(transform(o) * 2.0**i for i, o in enumerate(outs[: j + 1])).argmax(1) == y).float().mean()) for j in range(net.k)]
        assert evaluate(net, test_loader, ensemble=mode)["ensemble"] == pytest.approx(expected)
    with pytest.raises(InvalidArgument, match="'ensemble' of evaluate must be one of"):
        evaluate(net, test_loader, ensemble="vote")
