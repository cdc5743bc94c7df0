"""Test accuracy of every module's head, and the authors' ensemble of heads."""

from __future__ import annotations

from typing import Callable

import torch

from dglsim.data.loader import BatchLoader
from dglsim.errors import InvalidArgument
from dglsim.models.decoupled import DecoupledNet, eval_mode

ENSEMBLES = ("softmax", "logits")


@torch.no_grad()
def evaluate(net: DecoupledNet, loader: BatchLoader, *, modules: list[int] | None = None,
             links: list[Callable[[torch.Tensor], torch.Tensor]] | None = None, ensemble: str = "softmax") -> dict[str, list[float]]:
    """{"accuracy": [acc of head j], "ensemble": [acc of the ensemble of heads 0..j]} for j in `modules`
    (all by default). links: what each link does to the activation it carries (see
    DecoupledNet.all_logits); None passes activations unchanged.

    The ensemble weights head i's output by 2^i (deeper heads are better and dominate,
    shallower ones break ties): its softmax output with ensemble="softmax", its raw logits with
    ensemble="logits", as the authors' buffer experiments do (eugenium/DGL,
    buffer_experiments/cifar_buffer.py, `test`).
    """
    if ensemble not in ENSEMBLES:
        raise InvalidArgument(f"'ensemble' of evaluate must be one of {list(ENSEMBLES)}, got {ensemble!r}")
    modules = list(range(net.k)) if modules is None else modules
    correct = torch.zeros(net.k, dtype=torch.long)
    ens_correct = torch.zeros(net.k, dtype=torch.long)
    total = 0
    with eval_mode(net):
        for x, y in loader.epoch(0):
            probs_sum = None
            for j, logits in enumerate(net.all_logits(x, links=links)):
                correct[j] += (logits.argmax(1) == y).sum().cpu()
                weighted = (logits.softmax(1) if ensemble == "softmax" else logits) * 2.0**j
                probs_sum = weighted if probs_sum is None else probs_sum + weighted
                ens_correct[j] += (probs_sum.argmax(1) == y).sum().cpu()
            total += len(y)
    return {
        "accuracy": [correct[j].item() / total for j in modules],
        "ensemble": [ens_correct[j].item() / total for j in modules],
    }
