"""Epoch checkpoints of the epoch-loop methods (dgl, greedy, backprop), so that a run that is
preempted or killed resumes from its last finished epoch with the numbers it would have had.

What makes the resumed run equal to an uninterrupted one: the network's state (parameters and
BatchNorm statistics), every optimizer's state (momentum buffers), the rows reported so far and
the epoch reached. Nothing else carries over an epoch boundary: the data order and augmentation
of an epoch are drawn from (seed, epoch) by `BatchLoader.epoch`, and the learning rate is a
pure function of the epoch (`OptimConfig.lr_at`). The test of resumption compares parameters
and rows value for value with an uninterrupted run.

Runs in simulated time have no such boundary (each module is at its own epoch at any instant
of the event simulation), so they restart from the beginning when interrupted.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

__all__ = ["EpochCheckpoint"]


class EpochCheckpoint:
    """One file holding the state after the last finished epoch; written atomically (a temp
    file, then a rename), so a kill during a write leaves the previous checkpoint intact."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.resumed_at: int | None = None  # the epochs already done when the run resumed, for provenance

    def load(self) -> dict | None:
        """The saved state, or None when there is none. A file that cannot be read is an
        error, never a silent restart."""
        if not self.path.exists():
            return None
        state = torch.load(self.path, map_location="cpu", weights_only=True)
        self.resumed_at = state["position"]
        return state

    def save(self, state: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + f".tmp{os.getpid()}")
        try:
            torch.save(state, tmp)
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
