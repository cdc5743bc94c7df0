"""Real multi-process DGL (gloo, CPU): equivalence with single-process synchronous DGL, async
semantics, the trace, and failure behaviour."""

import json
import re
import time

import numpy as np
import pytest
import torch

from dglsim.data import BatchLoader
from dglsim.delays import Constant, Straggler, lognormal
from dglsim.models import build_network
from dglsim.ranks.cli import main
from dglsim.ranks.worker import FAULT_ENV
from dglsim.recipe.config import RunConfig
from dglsim.recipe.data import run_data
from dglsim.train.optim import set_lr
from dglsim.train.steps import dgl_step

pytestmark = [pytest.mark.data, pytest.mark.slow]

BASE = {"dataset": "cifar10", "arch": "authors_cnn", "width": 8, "head": "mlp_sr", "head_width": 16, "train_per_class": 10,
        "test_per_class": 5, "epochs": 2, "batch_size": 20, "lr": 0.05, "lr_decay_every": 1}


def _config(tmp_path, **settings) -> str:
    path = tmp_path / "run.toml"
    lines = [f"{k} = {json.dumps(v)}" for k, v in (BASE | settings).items()]
    path.write_text("\n".join(lines) + "\n[dist]\ntimeout_s = 20\n")
    return str(path)


def _single_process(cfg: RunConfig):
    """Synchronous DGL in one process, one thread: per module, the loss of every update; the final state."""
    torch.set_num_threads(1)
    net = build_network(cfg.network_spec(), seed=cfg.seed)
    tcfg = cfg.train_config()
    train_set, _ = run_data(cfg)
    loader = BatchLoader(train_set, tcfg.batch_size, shuffle=True, augment=cfg.augment, seed=cfg.seed, drop_last=True)
    optimizers = [tcfg.optim.make(net.module_parameters(j)) for j in range(net.k)]
    losses = []
    for epoch in range(tcfg.epochs):
        for opt in optimizers:
            set_lr(opt, tcfg.optim.lr_at(epoch))
        for x, y in loader.epoch(epoch):
            losses.append([float(v) for v in dgl_step(net, optimizers, x, y)])
    return np.array(losses).T, net.state_dict()


@pytest.mark.parametrize("k", [2, 3])
def test_sync_ranks_equal_single_process_dgl_loss_for_loss_and_parameter_for_parameter(k, tmp_path, cifar10):
    out = tmp_path / "out"
    assert main([_config(tmp_path, k=k, pipeline="sync"), "--out", str(out), "--no-progress"]) == 0
    results = json.loads((out / "results.json").read_text())
    losses, state = _single_process(RunConfig(method="distributed", k=k, pipeline="sync", **BASE))
    for j in range(k):  # float32 tolerance: the same kernels on the same inputs, in another process
        np.testing.assert_allclose(results["updates"][str(j)]["loss"], losses[j], rtol=1e-6, atol=1e-6)
    real = torch.load(out / "state.pt")
    for name, value in state.items():
        torch.testing.assert_close(real[name], value, rtol=1e-6, atol=1e-6)


def test_async_ranks_sample_a_replay_buffer_and_the_trace_reports_staleness(tmp_path, cifar10):
    """The last rank slowed 3x: it trains on buffered items, some of them several producer
    updates old; the merged trace has every rank's starts and finishes, and its staleness is
    counted from versions alone: the newest version that had arrived minus the item's."""
    out = tmp_path / "out"
    assert main([_config(tmp_path, k=3, pipeline="async", buffer=2, policy="least_used", slowed=2, slowdown=3.0), "--out", str(out), "--no-progress"]) == 0
    trace = np.genfromtxt(out / "trace.csv", delimiter=",", names=True, dtype=None, encoding="utf-8")
    starts = trace[(trace["action"] == "start") & (trace["worker"] == 2)]
    assert len(starts) == 10  # 2 epochs of 5 batches
    assert starts["staleness"].max() >= 1
    arrivals = trace[(trace["action"] == "arrive") & (trace["worker"] == 2)]
    for row in starts:  # arrivals and starts are stamped by one rank's clock, under one lock
        assert row["staleness"] == arrivals["version"][arrivals["time"] <= row["time"]].max() - row["version"]
    assert ((trace["action"] == "evict") & (trace["worker"] == 2)).any()  # the faster producer overwrites a full buffer
    results = json.loads((out / "results.json").read_text())
    assert [r["value"] for r in results["rows"] if r["metric"] == "updates"] == [10, 10, 10]


def test_async_ranks_with_max_reuse_stop_short_as_the_simulator_does_and_say_so(tmp_path, cifar10, capfd):
    """Each item used once, the consumer 3x slower with a buffer of 1: the producer overwrites
    items it never trained on, so once the producer is done nothing is left and the consumer ends
    short of its budget; the results record the updates it made (no error, as in simulation)."""
    out = tmp_path / "out"
    assert main([_config(tmp_path, k=2, pipeline="async", buffer=1, max_reuse=1, slowed=1, slowdown=3.0), "--out", str(out), "--no-progress"]) == 0
    results = json.loads((out / "results.json").read_text())
    updates = {r["module"]: r["value"] for r in results["rows"] if r["metric"] == "updates"}
    assert updates[0] == 10 and updates[1] < 10
    assert len(results["updates"]["1"]["loss"]) == updates[1]
    assert f"note: rank 1 stopped after {updates[1]} of its 10 updates" in capfd.readouterr().out


@pytest.mark.parametrize("kind", ["crash", "hang"])
def test_a_failed_rank_stops_the_run_within_the_timeout_and_is_named(kind, tmp_path, cifar10, monkeypatch, capfd):
    monkeypatch.setenv(FAULT_ENV, f"1:2:{kind}")  # rank 0 is then still training: at most 2 + 2 + 1 items ahead of 20
    start = time.monotonic()
    code = main([_config(tmp_path, k=3, pipeline="sync", epochs=4), "--out", str(tmp_path / "out"), "--timeout", "5", "--no-progress"])
    elapsed = time.monotonic() - start
    err = capfd.readouterr().err
    assert code == 1
    assert elapsed < 5 + 5 + 30  # timeout + grace + start-up
    out = tmp_path / "out"
    if kind == "crash":  # its neighbours notice its closed connection at once (or gloo's error on it)
        assert "error: rank 1: injected crash at update 2" in err, err
        assert "error: rank 1 failed first: rank 1: injected crash at update 2" in err, err
    else:  # rank 1 hangs: a neighbour times out and names it; rank 1 then sees it go
        assert re.search(r"error: rank 1 failed first: rank [02]: (no message from rank 1|rank 1 took no message)", err), err
    for rank in (0, 2):  # each neighbour stopped because of rank 1, or of the other neighbour that did
        assert json.loads((out / f"rank{rank}.error.json").read_text())["blames"] in (1, 2 - rank), err
        assert (out / f"rank{rank}.trace.csv").exists()  # partial traces are kept
    assert json.loads((out / "rank0.error.json").read_text())["blames"] == 1 or json.loads((out / "rank2.error.json").read_text())["blames"] == 1


def test_calibration_recovers_the_simulated_cluster_from_its_own_trace():
    """A simulator trace has the real ranks' format: fitting it gives back the constant compute
    times and link delays it was simulated with (to float rounding)."""
    from dglsim.ranks.calibrate import calibrated_spec, fit_calibration
    from dglsim.sim import simulate, spec_from_dict

    spec = spec_from_dict({"mode": "sync", "workers": 3, "steps": 30, "buffer": 2, "compute": [0.01, 0.03, 0.02], "latency": [0.004, 0.001]})
    cal = fit_calibration(simulate(spec).trace.to_array(), 3)
    np.testing.assert_allclose(cal.compute_s, [0.01, 0.03, 0.02], rtol=1e-9)
    np.testing.assert_allclose(cal.link_s, [0.004, 0.001], rtol=1e-9)
    assert cal.compute_cv == pytest.approx((0, 0, 0), abs=1e-6)
    twin = calibrated_spec(cal, mode="sync", steps=30, seed=0, buffer=2, policy="fifo", max_reuse=None, slowdown=(1.0, 1.0, 1.0))
    assert simulate(twin).makespan == pytest.approx(simulate(spec).makespan, rel=1e-9)


def test_torchrun_launches_the_same_ranks(tmp_path, cifar10):
    """The README's torchrun command: K processes from torchrun's environment, one result."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    torchrun = shutil.which("torchrun") or str(Path(sys.executable).with_name("torchrun"))
    out = tmp_path / "out"
    done = subprocess.run([torchrun, "--nproc-per-node", "2", "-m", "dglsim.ranks", _config(tmp_path, k=2, pipeline="async"), "--out", str(out), "--no-progress"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads((out / "results.json").read_text())
    assert results["provenance"]["world_size"] == 2 and results["provenance"]["backend"] == "gloo"
    assert {r["module"] for r in results["rows"] if r["metric"] == "test_accuracy"} == {0, 1}


@pytest.mark.parametrize("quant", ["vq", "uniform"])
def test_quantized_sync_ranks_equal_the_simulated_run_with_the_same_codecs(quant, tmp_path, cifar10):
    """Codes (and codebooks, once per publication) travel instead of floats; a sync run equals
    the simulated sync run of the same config, whose links encode with the same codecs."""
    from dglsim.recipe.codecs import link_codecs
    from dglsim.sim import spec_from_dict
    from dglsim.train.simulated import train_simulated

    settings = {"k": 3, "pipeline": "sync", "quant": quant, "codes": 16, "codebook_every": 2}
    out = tmp_path / "out"
    assert main([_config(tmp_path, **settings), "--out", str(out), "--no-progress"]) == 0
    cfg = RunConfig(method="distributed", **BASE, **settings)
    torch.set_num_threads(1)
    net = build_network(cfg.network_spec(), seed=cfg.seed)
    train_set, test_set = run_data(cfg)
    train = BatchLoader(train_set, cfg.batch_size, shuffle=True, augment=cfg.augment, seed=cfg.seed, drop_last=True)
    spec = spec_from_dict({"mode": "sync", "workers": 3, "steps": cfg.epochs * len(train), "compute": [0.01] * 3})
    sim = train_simulated(net, train, BatchLoader(test_set, 500, shuffle=False, augment=False), cfg.train_config(), spec, codecs=link_codecs(cfg))
    results = json.loads((out / "results.json").read_text())
    for j in range(3):
        np.testing.assert_allclose(results["updates"][str(j)]["loss"], sim.updates["loss"][sim.updates["module"] == j], rtol=1e-6, atol=1e-6)
    real = torch.load(out / "state.pt")
    for name, value in net.state_dict().items():
        torch.testing.assert_close(real[name], value, rtol=1e-6, atol=1e-6)
    trace = np.genfromtxt(out / "trace.csv", delimiter=",", names=True, dtype=None, encoding="utf-8")
    sent = trace["bytes"][(trace["action"] == "send") & (trace["worker"] == 0)]
    assert sent.max() < 4 * 20 * 8 * 32 * 32  # far below the float32 item (batch 20, 8 channels at 32x32)
    assert {r["metric"] for r in results["rows"]} >= {"unquantized_test_accuracy"}


@pytest.mark.parametrize(("delay", "slowdown"), [(Constant(1.0), 0.5), (Constant(1.0), 3.0), (lognormal(1.0, 0.5), 1.0), (lognormal(1.0, 0.5), 3.0),
                                                 (Straggler(Constant(1.0), 0.25, 4.0), 1.0)])
def test_the_twin_models_the_delay_the_ranks_inject(delay, slowdown):
    """A rank's step of fitted length m lasts m max(1, F s) (it sleeps to stretch, never to
    shrink): the twin's mean step equals that, estimated here from draws of F (4 MC s.e.)."""
    from dglsim.ranks.calibrate import Calibration, calibrated_spec

    cal = Calibration(compute_s=(0.01, 0.02), compute_cv=(0.0, 0.0), link_s=(0.001,), updates=(10, 10))
    spec = calibrated_spec(cal, mode="async", steps=10, seed=0, buffer=2, policy="fifo", max_reuse=None, slowdown=(1.0, slowdown), delay=delay)
    factors = np.maximum(1.0, delay.sample(np.random.default_rng(1), 400_000) * slowdown)
    expected, se = 0.02 * factors.mean(), 0.02 * factors.std() / np.sqrt(factors.size)
    assert abs(spec.compute_model(1).mean - expected) <= 4 * se + 1e-12
    assert spec.compute_model(0).mean == pytest.approx(0.01 * np.maximum(1.0, delay.sample(np.random.default_rng(1), 400_000)).mean(), rel=0.01)
