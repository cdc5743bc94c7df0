"""The theory's quantities estimated on real training: DGL in simulated time (synchronous,
asynchronous, with quantized links) with snapshots of the network, then, per snapshot and
module, the estimates the assumptions name and the corollary's bound computed from them.

Per snapshot s and module j, on a fixed probe set:
- the module's inputs X_j(s): the probe through the snapshot's modules 0..j-1 (eval mode); the
  last snapshot's inputs stand for the limit law q*;
- c lower bounds: sqrt(MMD^2) (Gaussian kernel, bandwidth from the limit sample) and twice the
  total variation of nearest-code histograms under a codebook fitted to the limit sample, both
  between the channel vectors of X_j(s) and of the limit (proofs/01: both are at most c_t);
- grad_norm2: |grad L_j(theta_j(s))|^2, L_j the module's local loss on the limit inputs (the objective);
- hessian_top: |top Hessian eigenvalue| of L_j at theta_j(s) (power iteration), and its residual;
- G: the mean |g|^2 of mini-batch gradients of the local loss, under the snapshot's inputs and
  under the limit's, the larger of the two (A3 asks for both);
- with a quantized link into module j (proofs/06): the inputs decoded by the link's codec as it
  was at the snapshot (a VQ link before its first codebook: not measured; its G~ is then the
  float inputs' G), their distortion D (per sample), the gradient bias |E[g(Q(x)) - g(x)]|,
  the mean per-sample error E|g(Q(x)) - g(x)| and the bound sqrt(E Lambda^2) sqrt(D), with
  per-sample gradients in eval mode and Lambda_i = |g(Q(x_i)) - g(x_i)| / |Q(x_i) - x_i| the
  secant constant (the smallest Lambda the mean-value step admits), and G~ on decoded inputs.

The bound per module j and update t uses: eta_t, the learning rate of that very update; c_t the
MMD lower bound of the producer version the consumed item came from (interpolated between
snapshots in the producer's update count, so that an asynchronous consumer's stale items count as
stale: proofs/05); B_t interpolated in the consumer's update count; gap = L_j(theta_j(0)) (the
loss is a cross-entropy, >= 0); L and G the largest over snapshots. A lower bound of c_t makes the
bound optimistic in its bias term, so a violation would be a finding; holding says less than it
would with the true c_t.
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
from dglsim.quant import Codec, VQConfig, to_vectors, vq_assign, vq_init, vq_update
from dglsim.sim import PipelineSpec
from dglsim.theory.bounds import corollary_bound
from dglsim.theory.distances import code_histogram_tv, median_bandwidth, mmd2_unbiased
from dglsim.theory.moments import batch_gradient, per_sample_gradients
from dglsim.theory.smoothness import hessian_top_eigenvalue
from dglsim.train.methods import TrainConfig
from dglsim.train.simulated import SimulatedRun, train_simulated

__all__ = ["Snapshot", "train_with_snapshots", "estimate_assumptions"]


@dataclass
class Snapshot:
    time: float  # simulated seconds
    steps: tuple[int, ...]  # updates of each module so far
    state: dict  # the network's state_dict
    codecs: list[Codec] | None  # the links' codecs as they were (quantized runs)


def train_with_snapshots(net: DecoupledNet, train: BatchLoader, test: BatchLoader, cfg: TrainConfig, spec: PipelineSpec, *,
                         interval: float, codecs: list[Codec] | None = None, progress=None) -> tuple[SimulatedRun, list[Snapshot]]:
    """`train_simulated` on `net` (in place) with a snapshot before the first update, after each
    evaluation (every `interval` simulated seconds) and at the end."""
    snapshots = [Snapshot(0.0, (0,) * net.k, copy.deepcopy(net.state_dict()), copy.deepcopy(codecs))]

    def observe(t: float, done: list[int]) -> None:
        snapshots.append(Snapshot(t, tuple(done), copy.deepcopy(net.state_dict()), copy.deepcopy(codecs)))

    run = train_simulated(net, train, test, cfg, spec, eval_interval=interval, codecs=codecs, observe=observe, progress=progress)
    return run, snapshots


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


def _mean_batch_norm2(stage: nn.Module, head: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> float:
    norms = [float(_gradient(stage, head, x[i : i + batch_size], y[i : i + batch_size]).square().sum()) for i in range(0, len(y) - batch_size + 1, batch_size)]
    return float(np.mean(norms))


def _quantization(stage: nn.Module, head: nn.Module, x: torch.Tensor, decoded: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """The quantization bias of the local gradient and its bound (proofs/06, claim quantized-bias)
    on the probe's empirical law."""
    model = nn.Sequential(stage, head)
    with eval_mode(model):  # per-sample gradients: no batch coupling
        diff = per_sample_gradients(model, nn.functional.cross_entropy, decoded, y) - per_sample_gradients(model, nn.functional.cross_entropy, x, y)
    moved = (decoded - x).flatten(1).norm(dim=1).double()
    error = diff.double().norm(dim=1)
    lam = torch.where(moved > 0, error / moved.clamp_min(1e-300), torch.zeros_like(error))
    distortion = float(moved.square().mean())
    return {"q_distortion": distortion, "q_bias": float(diff.double().mean(0).norm()), "q_mean_error": float(error.mean()),
            "q_lambda_rms": float(lam.square().mean().sqrt()), "q_bias_bound": float(lam.square().mean().sqrt()) * math.sqrt(distortion)}


def _reference_codebook(vectors: torch.Tensor, k: int, seed: int) -> torch.Tensor:
    cfg = VQConfig(codes=k, gamma=0.5, search="dense")
    gen = torch.Generator().manual_seed(seed)
    state = vq_init(cfg, vectors, gen)
    for _ in range(10):
        state = vq_update(cfg, state, vectors, vq_assign(cfg, state, vectors), gen)
    return state.codebook[0]


def _sample_rows(v: torch.Tensor, n: int, gen: torch.Generator) -> torch.Tensor:
    return v[torch.randperm(len(v), generator=gen)[:n]] if len(v) > n else v


def estimate_assumptions(net: DecoupledNet, snapshots: list[Snapshot], probe: tuple[torch.Tensor, torch.Tensor], updates: dict[str, np.ndarray], *,
                         batch_size: int, hessian_iters: int = 20, codes: int = 32, vectors: int = 1000, seed: int = 0) -> list[dict]:
    """Tidy rows {step, module, metric, value} (step: the module's updates so far) of every
    estimate at every snapshot, then per module the constants (step None) and per horizon the
    bound and the measured min |grad L|^2. `updates` is the run's per-update record
    (`SimulatedRun.updates`): the bound takes each update's learning rate and producer version."""
    x_probe, y_probe = probe
    work = copy.deepcopy(net)
    work.load_state_dict(snapshots[-1].state)
    limit = _inputs(work, x_probe)
    gen = torch.Generator().manual_seed(seed)
    reference = {j: _sample_rows(to_vectors(limit[j]), vectors, gen) for j in range(1, net.k)}
    bandwidth = {j: median_bandwidth(reference[j]) for j in reference}
    books = {j: _reference_codebook(reference[j], codes, seed) for j in reference}
    rows: list[dict] = []
    for index, snap in enumerate(snapshots):
        work.load_state_dict(snap.state)
        inputs = _inputs(work, x_probe)
        for j in range(net.k):
            stage, head = copy.deepcopy(work.stages[j]), copy.deepcopy(work.heads[j])  # batch-norm statistics stay untouched
            params = [*stage.parameters(), *head.parameters()]
            est = hessian_top_eigenvalue(lambda: _local_loss(stage, head, limit[j], y_probe), params, iters=hessian_iters, seed=seed)
            with torch.no_grad():
                loss = float(_local_loss(stage, head, limit[j], y_probe))
            values = {"loss": loss, "grad_norm2": float(_gradient(stage, head, limit[j], y_probe).square().sum()),
                      "hessian_top": abs(est.value), "hessian_residual": est.residual,
                      "G_current": _mean_batch_norm2(stage, head, inputs[j], y_probe, batch_size),
                      "G_limit": _mean_batch_norm2(stage, head, limit[j], y_probe, batch_size)}
            if j > 0:
                current = _sample_rows(to_vectors(inputs[j]), vectors, gen)
                values["c_mmd"] = math.sqrt(max(mmd2_unbiased(current, reference[j], bandwidth[j]), 0.0))
                values["c_tv_codes"] = 2 * code_histogram_tv(current, reference[j], books[j])
                codec = snap.codecs[j - 1] if snap.codecs else None
                if codec is not None and (codec.cfg.family != "vq" or codec.published is not None):  # a VQ link that has sent nothing has no codebook yet
                    decoded = codec.decode(codec.probe(inputs[j]))
                    values |= _quantization(stage, head, inputs[j], decoded, y_probe)
                    values["G_decoded"] = _mean_batch_norm2(stage, head, decoded, y_probe, batch_size)
            rows += [{"snapshot": index, "step": snap.steps[j], "time": snap.time, "module": j, "metric": name, "value": v} for name, v in values.items()]
    return rows + _bounds(rows, snapshots, updates, net.k)


def _interpolate(at: np.ndarray, xs: list[int], ys: list[float]) -> np.ndarray:
    """ys (given at the non-decreasing xs) linearly interpolated at `at`, held beyond the ends;
    of equal xs the last is kept."""
    keep = [i for i in range(len(xs)) if i == len(xs) - 1 or xs[i + 1] > xs[i]]
    return np.interp(at, np.asarray(xs, float)[keep], np.asarray(ys, float)[keep])


def _bounds(rows: list[dict], snapshots: list[Snapshot], updates: dict[str, np.ndarray], k: int) -> list[dict]:
    out = []
    for j in range(k):
        mine = updates["module"] == j
        etas = updates["lr"][mine]
        steps = [s.steps[j] for s in snapshots]
        mine_rows = [r for r in rows if r["module"] == j]
        series = {m: [r["value"] for r in mine_rows if r["metric"] == m] for m in ("loss", "grad_norm2", "hessian_top", "G_current", "G_limit", "c_mmd")}
        smoothness = max(series["hessian_top"])
        second = max(max(series["G_current"]), max(series["G_limit"]))
        cs = np.zeros(len(etas))
        if j > 0:  # c of the producer version each consumed item came from
            cs = _interpolate(updates["version"][mine], [s.steps[j - 1] for s in snapshots], series["c_mmd"])
        biases, decoded = None, None
        measured = [(r["step"], r["value"]) for r in mine_rows if r["metric"] == "q_bias_bound"]  # snapshots where the link had a codebook
        if measured:
            biases = _interpolate(np.arange(len(etas)), [m[0] for m in measured], [m[1] for m in measured])
            # G~ at each snapshot; where the link had no codebook yet, the float inputs' G stands in
            per_snapshot = {r["snapshot"]: r["value"] for r in mine_rows if r["metric"] == "G_current"}
            per_snapshot |= {r["snapshot"]: r["value"] for r in mine_rows if r["metric"] == "G_decoded"}
            decoded = max(per_snapshot.values())
        bound = corollary_bound(series["loss"][0], smoothness, second, etas, cs, biases=biases, decoded_second_moment=decoded)
        out += [{"step": None, "module": j, "metric": "L_estimate", "value": smoothness},
                {"step": None, "module": j, "metric": "G_estimate", "value": second}]
        for s, snap in enumerate(snapshots[1:], start=1):
            horizon = snap.steps[j]
            if horizon == 0 or horizon == steps[s - 1]:  # no update since the last horizon
                continue
            earlier = [g for step, g in zip(steps, series["grad_norm2"]) if step < horizon]  # snapshots before the horizon
            out += [{"step": horizon, "time": snap.time, "module": j, "metric": "bound", "value": float(bound[horizon - 1])},
                    {"step": horizon, "time": snap.time, "module": j, "metric": "min_grad_norm2", "value": float(min(earlier))}]
    return out

