"""The theory's quantities estimated on real training: synchronous DGL with parameter snapshots,
then, per snapshot and module, the estimates the assumptions name and the corollary's bound
computed from them.

Per snapshot s (after t_s updates) and module j, on a fixed probe set:
- the module's inputs X_j(s): the probe through the snapshot's modules 0..j-1 (eval mode); the
  last snapshot's inputs stand for the limit law q*;
- c lower bounds: sqrt(MMD^2) (Gaussian kernel, bandwidth from the limit sample) and twice the
  total variation of nearest-code histograms under a codebook fitted to the limit sample, both
  between the channel vectors of X_j(s) and of the limit (proofs/01: both are at most c_t);
- grad2: |grad L_j(theta_j(s))|^2, L_j the module's local loss on the limit inputs (the objective);
- L: |top Hessian eigenvalue| of L_j at theta_j(s) (power iteration), and its residual;
- G: the mean |g|^2 of mini-batch gradients of the local loss, under the snapshot's inputs and
  under the limit's, the larger of the two (A3 asks for both).
The bound uses gap = L_j(theta_j(0)) (the loss is a cross-entropy, >= 0), L = max over
snapshots, G = max over snapshots, c_t the MMD lower bound held from each snapshot to the
next: a lower bound of c_t makes the bound optimistic in its bias term, so a violation would be
a finding, and holding says less than with the true c_t.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from dglsim.data.loader import BatchLoader
from dglsim.models.decoupled import DecoupledNet, eval_mode
from dglsim.quant import VQConfig, to_vectors, vq_assign, vq_init, vq_update
from dglsim.theory.bounds import corollary_bound
from dglsim.theory.distances import code_histogram_tv, median_bandwidth, mmd2_unbiased
from dglsim.theory.moments import batch_gradient
from dglsim.theory.smoothness import hessian_top_eigenvalue
from dglsim.train.methods import TrainConfig
from dglsim.train.optim import set_lr
from dglsim.train.steps import dgl_step

__all__ = ["Snapshot", "train_with_snapshots", "estimate_assumptions"]


@dataclass
class Snapshot:
    step: int  # updates of every module so far
    lr: float  # the learning rate of the next update
    state: dict  # the network's state_dict


def train_with_snapshots(net: DecoupledNet, loader: BatchLoader, cfg: TrainConfig, *, every: int) -> list[Snapshot]:
    """Synchronous DGL on `net` (in place), with a snapshot before the first update, every
    `every` updates and after the last."""
    optimizers = [cfg.optim.make(net.module_parameters(j)) for j in range(net.k)]
    snapshots, step = [], 0
    for epoch in range(cfg.epochs):
        lr = cfg.optim.lr_at(epoch)
        for opt in optimizers:
            set_lr(opt, lr)
        for x, y in loader.epoch(epoch):
            if step % every == 0:
                snapshots.append(Snapshot(step, lr, copy.deepcopy(net.state_dict())))
            dgl_step(net, optimizers, x, y)
            step += 1
    snapshots.append(Snapshot(step, cfg.optim.lr_at(cfg.epochs - 1), copy.deepcopy(net.state_dict())))
    return snapshots


def _inputs(net: DecoupledNet, x: torch.Tensor) -> list[torch.Tensor]:
    """The probe's input to every module (module 0's is the probe itself)."""
    out = [x]
    with eval_mode(net), torch.no_grad():
        for stage in net.stages[:-1]:
            out.append(stage(out[-1]))
    return out


def _local_loss(stage: nn.Module, head: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(head(stage(x)), y)


def _gradient(stage: nn.Module, head: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return batch_gradient(nn.Sequential(stage, head), nn.functional.cross_entropy, x, y)


def _reference_codebook(vectors: torch.Tensor, k: int, seed: int) -> torch.Tensor:
    cfg = VQConfig(codes=k, gamma=0.5, search="dense")
    gen = torch.Generator().manual_seed(seed)
    state = vq_init(cfg, vectors, gen)
    for _ in range(10):
        state = vq_update(cfg, state, vectors, vq_assign(cfg, state, vectors), gen)
    return state.codebook[0]


def _sample_rows(v: torch.Tensor, n: int, gen: torch.Generator) -> torch.Tensor:
    return v[torch.randperm(len(v), generator=gen)[:n]] if len(v) > n else v


def estimate_assumptions(net: DecoupledNet, snapshots: list[Snapshot], probe: tuple[torch.Tensor, torch.Tensor], *,
                         batch_size: int, hessian_iters: int = 20, codes: int = 32, vectors: int = 1000, seed: int = 0) -> list[dict]:
    """Tidy rows {step, module, metric, value} of every estimate at every snapshot, then per module
    the constants (step None) and per horizon the bound and the measured min |grad L|^2."""
    x_probe, y_probe = probe
    work = copy.deepcopy(net)
    work.load_state_dict(snapshots[-1].state)
    limit = _inputs(work, x_probe)
    gen = torch.Generator().manual_seed(seed)
    reference = {j: _sample_rows(to_vectors(limit[j]), vectors, gen) for j in range(1, net.k)}
    bandwidth = {j: median_bandwidth(reference[j]) for j in reference}
    books = {j: _reference_codebook(reference[j], codes, seed) for j in reference}
    rows: list[dict] = []
    for snap in snapshots:
        work.load_state_dict(snap.state)
        inputs = _inputs(work, x_probe)
        for j in range(net.k):
            stage, head = copy.deepcopy(work.stages[j]), copy.deepcopy(work.heads[j])  # batch-norm statistics stay untouched
            params = [*stage.parameters(), *head.parameters()]
            est = hessian_top_eigenvalue(lambda: _local_loss(stage, head, limit[j], y_probe), params, iters=hessian_iters, seed=seed)
            with torch.no_grad():
                loss = float(_local_loss(stage, head, limit[j], y_probe))
            grad2 = float(_gradient(stage, head, limit[j], y_probe).square().sum())
            second = []
            for source in (inputs[j], limit[j]):
                norms = [float(_gradient(stage, head, source[i : i + batch_size], y_probe[i : i + batch_size]).square().sum())
                         for i in range(0, len(y_probe) - batch_size + 1, batch_size)]
                second.append(float(np.mean(norms)))
            values = {"loss": loss, "grad_norm2": grad2, "hessian_top": abs(est.value), "hessian_residual": est.residual,
                      "G_current": second[0], "G_limit": second[1], "lr": snap.lr}
            if j > 0:
                current = _sample_rows(to_vectors(inputs[j]), vectors, gen)
                values["c_mmd"] = math.sqrt(max(mmd2_unbiased(current, reference[j], bandwidth[j]), 0.0))
                values["c_tv_codes"] = 2 * code_histogram_tv(current, reference[j], books[j])
            rows += [{"step": snap.step, "module": j, "metric": name, "value": v} for name, v in values.items()]
    return rows + _bounds(rows, snapshots, net.k)


def _bounds(rows: list[dict], snapshots: list[Snapshot], k: int) -> list[dict]:
    out = []
    steps = [s.step for s in snapshots]
    total = steps[-1]
    for j in range(k):
        series = {m: np.array([r["value"] for r in rows if r["module"] == j and r["metric"] == m]) for m in
                  ("loss", "grad_norm2", "hessian_top", "G_current", "G_limit", "lr", "c_mmd")}
        smoothness = float(series["hessian_top"].max())
        second = float(max(series["G_current"].max(), series["G_limit"].max()))
        # per update t: the learning rate and c of the last snapshot at or before t
        index = np.searchsorted(steps, np.arange(total), side="right") - 1
        etas = series["lr"][index]
        cs = series["c_mmd"][index] if j > 0 else np.zeros(total)
        bound = corollary_bound(float(series["loss"][0]), smoothness, second, etas, cs)
        out += [{"step": None, "module": j, "metric": "L_estimate", "value": smoothness},
                {"step": None, "module": j, "metric": "G_estimate", "value": second}]
        for s, snap_step in enumerate(steps[1:], start=1):
            measured = float(series["grad_norm2"][:s].min())  # snapshots before the horizon
            out += [{"step": snap_step, "module": j, "metric": "bound", "value": float(bound[snap_step - 1])},
                    {"step": snap_step, "module": j, "metric": "min_grad_norm2", "value": measured}]
    return out
