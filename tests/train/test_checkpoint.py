"""Epoch checkpoints: a run interrupted after any epoch and resumed from its checkpoint ends
with the parameters, BatchNorm statistics and rows of the uninterrupted run, value for value."""

import pytest
import torch

from dglsim.models import build_network
from dglsim.train import OptimConfig, TrainConfig, train
from dglsim.train.checkpoint import EpochCheckpoint
from tests.train.test_methods import SPEC, _loaders, _toy

# Momentum and a decay every epoch: optimizer state and the schedule both cross the boundary.
CFG = TrainConfig(epochs=3, batch_size=16, optim=OptimConfig(lr=0.05, lr_decay_every=1, momentum=0.9))


class Preempted(Exception):
    pass


class PreemptedAfter(EpochCheckpoint):
    """Saves like an EpochCheckpoint, then stops the run after `saves` epochs, as a kill would."""

    def __init__(self, path, saves: int) -> None:
        super().__init__(path)
        self.left = saves

    def save(self, state: dict) -> None:
        super().save(state)
        self.left -= 1
        if self.left == 0:
            raise Preempted


def _state(net):
    return {name: value.clone() for name, value in net.state_dict().items()}


@pytest.mark.parametrize("method", ["dgl", "greedy", "backprop"])
@pytest.mark.parametrize("stop_after", [1, 2, 4])
def test_a_resumed_run_equals_the_uninterrupted_one(tmp_path, method, stop_after):
    epochs_in_run = CFG.epochs * (SPEC.k if method == "greedy" else 1)
    if stop_after >= epochs_in_run:
        pytest.skip("the run ends before that epoch")
    whole = build_network(SPEC, seed=3)
    expected_rows = train(method, whole, *_loaders(_toy()), CFG)

    path = tmp_path / "run.pt"
    first = build_network(SPEC, seed=3)
    with pytest.raises(Preempted):
        train(method, first, *_loaders(_toy()), CFG, checkpoint=PreemptedAfter(path, stop_after))
    resumed_net = build_network(SPEC, seed=3)  # a fresh process: weights at their initial values
    steps = []
    checkpoint = EpochCheckpoint(path)
    rows = train(method, resumed_net, *_loaders(_toy()), CFG, checkpoint=checkpoint, progress=steps.append)

    assert checkpoint.resumed_at == stop_after
    assert rows == expected_rows
    got, want = _state(resumed_net), _state(whole)
    assert got.keys() == want.keys()
    for name in want:
        assert torch.equal(got[name], want[name]), name
    batches = len(_loaders(_toy())[0])
    assert steps[0] == stop_after * batches  # progress counts the epochs already done once


def test_without_the_optimizer_state_the_resumed_run_differs(tmp_path):
    """Negative control: a checkpoint that drops the momentum buffers resumes to other weights,
    so the equality above rests on the saved optimizer state."""

    class ForgetsMomentum(PreemptedAfter):
        def save(self, state):
            super().save({**state, "optimizers": [{**opt, "state": {}} for opt in state["optimizers"]]})

    whole = build_network(SPEC, seed=3)
    train("dgl", whole, *_loaders(_toy()), CFG)
    path = tmp_path / "run.pt"
    with pytest.raises(Preempted):
        train("dgl", build_network(SPEC, seed=3), *_loaders(_toy()), CFG, checkpoint=ForgetsMomentum(path, 1))
    resumed = build_network(SPEC, seed=3)
    train("dgl", resumed, *_loaders(_toy()), CFG, checkpoint=EpochCheckpoint(path))
    assert not all(torch.equal(a, b) for a, b in zip(resumed.state_dict().values(), whole.state_dict().values()))


def test_a_write_that_dies_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    """A save killed halfway (here: torch.save writes half a file and fails) leaves the previous
    epoch's checkpoint readable and no temp file behind."""
    checkpoint = EpochCheckpoint(tmp_path / "run.pt")
    checkpoint.save({"position": 1, "rows": []})

    def dies_halfway(obj, f):
        open(f, "wb").write(b"half a file")
        raise OSError("no space left on device")

    monkeypatch.setattr(torch, "save", dies_halfway)
    with pytest.raises(OSError):
        checkpoint.save({"position": 2, "rows": []})
    monkeypatch.undo()
    assert EpochCheckpoint(tmp_path / "run.pt").load()["position"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["run.pt"]
