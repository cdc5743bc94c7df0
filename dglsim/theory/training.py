"""The theory's quantities estimated on real training: DGL in simulated time (synchronous,
asynchronous, with quantized links) with snapshots of the network, then, per snapshot and
module, the estimates the assumptions name and the corollary's bound computed from them.

Per snapshot s and module j, on a fixed probe set (`training_probe`: a sample of the law the
module's mini-batches come from):
- the module's inputs X_j(s): the probe through the snapshot's modules 0..j-1 (eval mode); the
  inputs of a reference network (the same network trained separately, for longer) stand for the
  limit law q*;
- c lower bounds: sqrt(MMD^2) (Gaussian kernel, bandwidth from the limit sample) and twice the
  total variation of nearest-code histograms under a codebook fitted to the limit sample, both
  between the channel vectors of X_j(s) and of the limit (proofs/01: both are at most c_t);
- grad_norm2: |grad L_j(theta_j(s))|^2, L_j the module's local loss on the limit inputs (the objective);
- hessian_top: |top Hessian eigenvalue| of L_j at theta_j(s) (power iteration), and its residual;
- G: the mean |g|^2 of mini-batch gradients of the local loss, under the snapshot's inputs and
  under the limit's, the larger of the two (A3 asks for both);
- with a quantized link into module j (proofs/06): the inputs decoded by the link's codec as it
  was at the snapshot (a VQ link before its first codebook: not measured; its G~ is then the
  float inputs' G); on one half of the probe their distortion D, the gradient bias
  |E[g(Q(x)) - g(x)]| and the mean per-sample error; on the other half the input-Jacobian norms
  of the gradient along each sample's segment, whose RMS (upper 95% limit) is the Lambda of the
  bound Lambda sqrt(D) (`quantization_bias`); G~ on decoded inputs;
- the trajectory form's realized terms (proofs/07): grad_shift = |grad L~_t - grad L| (the
  gradient on what the module trains on, decoded included, against the limit's) and
  step_curvature = E[g^T H g] over the probe's mini-batches.

The global bound per module j and update t uses: eta_t, the learning rate of that very update;
c_t the MMD lower bound of the producer version the consumed item came from (interpolated
between snapshots in the producer's update count, so that an asynchronous consumer's stale items
count as stale: proofs/05); B_t interpolated in the consumer's update count; gap = L_j(theta_j(0))
(the loss is a cross-entropy, >= 0); L and G the largest over snapshots. A lower bound of c_t
makes the bound optimistic in its bias term, so a violation would be a finding; holding says
less than it would with the true c_t. The trajectory bound uses the realized loss drop and the
realized terms interpolated between snapshots. Both are also written as the sums they are made
of, so that `held_out_bounds` can rebuild them from another seed's estimates.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats
from torch import nn
from torch.func import functional_call, grad, jvp, vjp, vmap

from dglsim.data.loader import BatchLoader
from dglsim.errors import InvalidArgument
from dglsim.models.decoupled import DecoupledNet, eval_mode
from dglsim.quant import Codec, VQConfig, to_vectors, vq_assign, vq_init, vq_update
from dglsim.sim import PipelineSpec
from dglsim.theory.bounds import corollary_from_sums, trajectory_bound
from dglsim.theory.distances import code_histogram_tv, median_bandwidth, mmd2_unbiased
from dglsim.theory.moments import batch_gradient, per_sample_gradients
from dglsim.theory.smoothness import hessian_top_eigenvalue, hessian_vector_product, inner
from dglsim.train.methods import TrainConfig
from dglsim.train.simulated import SimulatedRun, train_simulated

JACOBIAN_SAMPLES = 64  # held-out samples of the input-Jacobian norms (power iteration per sample and point: the cost)

__all__ = ["Snapshot", "train_with_snapshots", "training_probe", "module_inputs", "estimate_assumptions", "quantization_bias", "input_jacobian_norms", "held_out_bounds"]


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


def training_probe(train: BatchLoader) -> tuple[torch.Tensor, torch.Tensor]:
    """The probe: every sample of one epoch of the training loader, as one batch. The theory's
    objective is the loss under the law SGD draws its mini-batches from (E[g_t | F_t] =
    grad L_t(theta_t)); without augmentation that law is the training set itself, so on this
    probe the objective and its gradient are exact, not estimates (a sample of it would add its
    own noise to every measured |grad L|^2)."""
    if train.augment:
        raise InvalidArgument("'train' of training_probe must not augment (the objective is the training set's loss), got a loader with augment=True")
    whole = BatchLoader(train.data, train.batch_size, shuffle=False, augment=False)  # every sample, dropped last batch or not
    xs, ys = zip(*whole.epoch(0))
    return torch.cat(xs), torch.cat(ys)


def module_inputs(net: DecoupledNet, x: torch.Tensor) -> list[torch.Tensor]:
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


def _batches(y: torch.Tensor, batch_size: int) -> list[slice]:
    return [slice(i, i + batch_size) for i in range(0, len(y) - batch_size + 1, batch_size)]


def _mean_batch_norm2(stage: nn.Module, head: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> float:
    return float(np.mean([float(_gradient(stage, head, x[b], y[b]).square().sum()) for b in _batches(y, batch_size)]))


def _step_curvature(stage: nn.Module, head: nn.Module, limit: torch.Tensor, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> float:
    """The mean over the probe's mini-batches of g^T H g: g a mini-batch gradient on the inputs
    the module trains on, H the Hessian of the objective (limit inputs) at the same theta. Half
    of eta^2 g^T H g is the curvature cost of a step of direction g to second order: the
    smoothness along the update's segment times the realized |g|^2."""
    params = [*stage.parameters(), *head.parameters()]
    grads = torch.autograd.grad(_local_loss(stage, head, limit, y), params, create_graph=True)
    values = []
    for b in _batches(y, batch_size):
        g = torch.autograd.grad(_local_loss(stage, head, x[b], y[b]), params)
        values.append(float(inner(hessian_vector_product(grads, params, g), g)))
    return float(np.mean(values))


def input_jacobian_norms(model: nn.Module, x: torch.Tensor, decoded: torch.Tensor, y: torch.Tensor, *, points: tuple[float, ...] = (0.0, 0.5, 1.0),
                          iters: int = 10, seed: int = 0) -> torch.Tensor:
    """Per sample i: the largest over `points` s of the segment from x_i to decoded_i of the
    spectral norm of d grad_theta l(theta; z) / dz at z = x_i + s (decoded_i - x_i), by power
    iteration on J^T J with Jacobian-vector products (forward over reverse) and vector-Jacobian
    products. Power iteration approaches the norm from below, and three points sample the
    segment's supremum: both make this an estimate, not a bound."""
    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach() for k, v in model.named_buffers()}

    def gradient_at(z: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        g = grad(lambda p: nn.functional.cross_entropy(functional_call(model, (p, buffers), (z[None],)), label[None]))(params)
        return torch.cat([g[k].reshape(-1) for k in params])

    def jtj(z, label, v):
        f = lambda zz: gradient_at(zz, label)  # noqa: E731
        _, jv = jvp(f, (z,), (v,))
        _, pullback = vjp(f, z)
        return pullback(jv)[0], jv.norm()

    batched = vmap(jtj)
    gen = torch.Generator().manual_seed(seed)
    best = torch.zeros(len(y), dtype=torch.float64)
    for s in points:
        z = (x + s * (decoded - x)).detach()
        v = torch.randn(z.shape, generator=gen).to(z)
        v = v / v.flatten(1).norm(dim=1).view(-1, *[1] * (z.ndim - 1))
        norm = torch.zeros(len(y))
        for _ in range(iters):
            w, norm = batched(z, y, v)
            v = w / w.flatten(1).norm(dim=1).clamp_min(1e-30).view(-1, *[1] * (z.ndim - 1))
        best = torch.maximum(best, norm.double())
    return best


def quantization_bias(stage: nn.Module, head: nn.Module, x: torch.Tensor, decoded: torch.Tensor, y: torch.Tensor, seed: int) -> dict[str, float]:
    """The quantization bias of the local gradient and its bound (proofs/06, claim quantized-bias).

    The probe is split in two halves. On the graded half: the distortion D, the bias
    |E[g(Q(x)) - g(x)]|, the mean per-sample error and the secant diagnostic
    sqrt(E Lambda_i^2) sqrt(D) (Lambda_i = |g(Q(x_i)) - g(x_i)| / |Q(x_i) - x_i|, the same
    samples: a diagnostic of how loose Jensen's step is, not a check). On up to JACOBIAN_SAMPLES
    of the held-out half: the input-Jacobian norms of the gradient along each sample's segment (`input_jacobian_norms`),
    whose root mean square, with its one-sided 95% upper limit, is the Lipschitz constant the
    bound uses: q_bias_bound = upper(sqrt(E Lambda^2)) sqrt(D)."""
    model = nn.Sequential(stage, head)
    half = len(y) // 2
    graded, held = slice(0, half), slice(half, half + min(half, JACOBIAN_SAMPLES))
    with eval_mode(model):  # per-sample gradients: no batch coupling
        diff = (per_sample_gradients(model, nn.functional.cross_entropy, decoded[graded], y[graded])
                - per_sample_gradients(model, nn.functional.cross_entropy, x[graded], y[graded]))
        lam = input_jacobian_norms(model, x[held], decoded[held], y[held], seed=seed)
    moved = (decoded[graded] - x[graded]).flatten(1).norm(dim=1).double()
    error = diff.double().norm(dim=1)
    secant = torch.where(moved > 0, error / moved.clamp_min(1e-300), torch.zeros_like(error))
    distortion = float(moved.square().mean())
    squares = lam.square().numpy()
    upper = squares.mean() + stats.t.ppf(0.95, len(squares) - 1) * squares.std(ddof=1) / math.sqrt(len(squares))
    return {"q_distortion": distortion, "q_bias": float(diff.double().mean(0).norm()), "q_mean_error": float(error.mean()),
            "q_secant_bound": float(secant.square().mean().sqrt()) * math.sqrt(distortion),
            "q_lambda_rms": float(math.sqrt(squares.mean())), "q_lambda_rms_high": float(math.sqrt(upper)),
            "q_bias_bound": float(math.sqrt(upper)) * math.sqrt(distortion)}


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
                         limit: dict, batch_size: int, hessian_iters: int = 20, codes: int = 32, vectors: int = 1000, seed: int = 0) -> list[dict]:
    """Tidy rows {step, module, metric, value} (step: the module's updates so far) of every
    estimate at every snapshot, then per module the constants (step None) and per horizon the
    bounds, their sums and the measured gradient norms. `limit` is the state of the same network
    trained separately to convergence: its modules' outputs stand for the limit law q*.
    `updates` is the run's per-update record (`SimulatedRun.updates`): the bounds take each
    update's learning rate and producer version."""
    x_probe, y_probe = probe
    work = copy.deepcopy(net)
    work.load_state_dict(limit)
    limit_inputs = module_inputs(work, x_probe)
    gen = torch.Generator().manual_seed(seed)
    reference = {j: _sample_rows(to_vectors(limit_inputs[j]), vectors, gen) for j in range(1, net.k)}
    bandwidth = {j: median_bandwidth(reference[j]) for j in reference}
    books = {j: _reference_codebook(reference[j], codes, seed) for j in reference}
    rows: list[dict] = []
    for index, snap in enumerate(snapshots):
        work.load_state_dict(snap.state)
        inputs = module_inputs(work, x_probe)
        for j in range(net.k):
            stage, head = copy.deepcopy(work.stages[j]), copy.deepcopy(work.heads[j])  # batch-norm statistics stay untouched
            params = [*stage.parameters(), *head.parameters()]
            target = limit_inputs[j]
            est = hessian_top_eigenvalue(lambda: _local_loss(stage, head, target, y_probe), params, iters=hessian_iters, seed=seed)
            with torch.no_grad():
                loss = float(_local_loss(stage, head, target, y_probe))
            objective_gradient = _gradient(stage, head, target, y_probe)
            values = {"loss": loss, "grad_norm2": float(objective_gradient.square().sum()),
                      "hessian_top": abs(est.value), "hessian_residual": est.residual,
                      "G_current": _mean_batch_norm2(stage, head, inputs[j], y_probe, batch_size),
                      "G_limit": _mean_batch_norm2(stage, head, target, y_probe, batch_size)}
            trained_on = inputs[j]  # what the module's updates see: decoded inputs on a quantized link
            if j > 0:
                current = _sample_rows(to_vectors(inputs[j]), vectors, gen)
                values["c_mmd"] = math.sqrt(max(mmd2_unbiased(current, reference[j], bandwidth[j]), 0.0))
                values["c_tv_codes"] = 2 * code_histogram_tv(current, reference[j], books[j])
                codec = snap.codecs[j - 1] if snap.codecs else None
                if codec is not None and (codec.cfg.family != "vq" or codec.published is not None):  # a VQ link that has sent nothing has no codebook yet
                    trained_on = codec.decode(codec.probe(inputs[j]))
                    values |= quantization_bias(stage, head, inputs[j], trained_on, y_probe, seed)
                    values["G_decoded"] = _mean_batch_norm2(stage, head, trained_on, y_probe, batch_size)
            # the trajectory form's realized terms (proofs/07): the bias of training on what the
            # module sees instead of q*, and the curvature a step meets
            values["grad_shift"] = float((_gradient(stage, head, trained_on, y_probe) - objective_gradient).norm())
            values["step_curvature"] = _step_curvature(stage, head, target, trained_on, y_probe, batch_size)
            rows += [{"snapshot": index, "step": snap.steps[j], "time": snap.time, "module": j, "metric": name, "value": v} for name, v in values.items()]
    return rows + _bounds(rows, snapshots, updates, net.k)


def _interpolate(at: np.ndarray, xs: list[int], ys: list[float]) -> np.ndarray:
    """ys (given at the non-decreasing xs) linearly interpolated at `at`, held beyond the ends;
    of equal xs the last is kept."""
    keep = [i for i in range(len(xs)) if i == len(xs) - 1 or xs[i + 1] > xs[i]]
    return np.interp(at, np.asarray(xs, float)[keep], np.asarray(ys, float)[keep])


def _bounds(rows: list[dict], snapshots: list[Snapshot], updates: dict[str, np.ndarray], k: int) -> list[dict]:
    """Per module: the constants of the global form (step None), and per horizon T (a snapshot
    after the module's T-th update) the global bound and the trajectory bound with this run's
    own estimates, the sums they are made of (so that a report can rebuild either bound with
    another seed's estimates: `corollary_from_sums`, `trajectory_bound`) and the measured
    min_{t<T} and eta-weighted mean of |grad L(theta_t)|^2. Per-update values are interpolated
    between snapshots in the module's update count; c_t in the producer's."""
    out = []
    for j in range(k):
        mine = updates["module"] == j
        etas = updates["lr"][mine]
        steps = [s.steps[j] for s in snapshots]
        at = np.arange(len(etas))
        mine_rows = [r for r in rows if r["module"] == j]
        names = ("loss", "grad_norm2", "hessian_top", "G_current", "G_limit", "c_mmd", "grad_shift", "step_curvature")
        series = {m: [r["value"] for r in mine_rows if r["metric"] == m] for m in names}
        smoothness = max(series["hessian_top"])
        second = max(max(series["G_current"]), max(series["G_limit"]))
        cs = np.zeros(len(etas))
        if j > 0:  # c of the producer version each consumed item came from
            cs = _interpolate(updates["version"][mine], [s.steps[j - 1] for s in snapshots], series["c_mmd"])
        biases, decoded = np.zeros(len(etas)), None
        measured = [(r["step"], r["value"]) for r in mine_rows if r["metric"] == "q_bias_bound"]  # snapshots where the link had a codebook
        if measured:
            biases = _interpolate(at, [m[0] for m in measured], [m[1] for m in measured])
            # G~ at each snapshot; where the link had no codebook yet, the float inputs' G stands in
            per_snapshot = {r["snapshot"]: r["value"] for r in mine_rows if r["metric"] == "G_current"}
            per_snapshot |= {r["snapshot"]: r["value"] for r in mine_rows if r["metric"] == "G_decoded"}
            decoded = max(per_snapshot.values())
        grad2 = _interpolate(at, steps, series["grad_norm2"])
        shift = _interpolate(at, steps, np.sqrt(series["grad_norm2"]) * np.asarray(series["grad_shift"]))
        curvature = np.maximum(_interpolate(at, steps, series["step_curvature"]), 0.0)
        sums = {"sum_eta": np.cumsum(etas), "sum_eta2": np.cumsum(etas**2), "sum_eta_sqrt_c": np.cumsum(etas * np.sqrt(cs)),
                "sum_eta_qbias": np.cumsum(etas * biases), "traj_bias_sum": np.cumsum(etas * shift),
                "traj_curvature_sum": np.cumsum(etas**2 * curvature) / 2, "sum_eta_grad_norm2": np.cumsum(etas * grad2)}
        out += [{"step": None, "module": j, "metric": "L_estimate", "value": smoothness},
                {"step": None, "module": j, "metric": "G_estimate", "value": second},
                {"step": None, "module": j, "metric": "G_decoded_estimate", "value": second if decoded is None else decoded},
                {"step": None, "module": j, "metric": "initial_loss", "value": series["loss"][0]}]
        for s, snap in enumerate(snapshots[1:], start=1):
            horizon = snap.steps[j]
            if horizon == 0 or horizon == steps[s - 1]:  # no update since the last horizon
                continue
            earlier = [g for step, g in zip(steps, series["grad_norm2"]) if step < horizon]  # snapshots before the horizon
            at_horizon = {name: float(v[horizon - 1]) for name, v in sums.items()}
            drop = series["loss"][0] - series["loss"][s]
            values = {"bound": float(corollary_from_sums(series["loss"][0], smoothness, second, at_horizon["sum_eta"], at_horizon["sum_eta2"], at_horizon["sum_eta_sqrt_c"],
                                                         at_horizon["sum_eta_qbias"], decoded_second_moment=decoded)),
                      "trajectory_bound": float(trajectory_bound(drop, at_horizon["traj_bias_sum"], at_horizon["traj_curvature_sum"], at_horizon["sum_eta"])),
                      "min_grad_norm2": float(min(earlier)), "mean_grad_norm2": at_horizon["sum_eta_grad_norm2"] / at_horizon["sum_eta"], "loss_drop": drop, **at_horizon}
            out += [{"step": horizon, "time": snap.time, "module": j, "metric": name, "value": v} for name, v in values.items()]
    return out


def held_out_bounds(checked: list[dict], fitted: list[dict]) -> list[dict]:
    """Both bounds of `checked` (rows of `estimate_assumptions` for one run) rebuilt from the
    estimates of `fitted` (another seed of the same setting, so the same step sizes): the global
    form with fitted's L, G, G~ and its sums of eta sqrt(c_t) and eta B_t; the trajectory form
    with fitted's realized bias and curvature sums. What stays checked's own is what is not
    estimated: its initial loss, its loss drop and its step sizes. Rows per module and horizon
    both runs share: held_out_bound, held_out_trajectory_bound."""
    own = {(r["module"], r["metric"], r["step"]): r["value"] for r in checked}
    other = {(r["module"], r["metric"], r["step"]): r["value"] for r in fitted}
    out = []
    for (j, metric, step), sum_eta in own.items():
        if metric != "sum_eta" or (j, "sum_eta", step) not in other:
            continue
        mine, theirs = (lambda m: own[j, m, step]), (lambda m: other[j, m, step])  # noqa: E731
        glob = corollary_from_sums(own[j, "initial_loss", None], other[j, "L_estimate", None], other[j, "G_estimate", None], sum_eta, mine("sum_eta2"),
                                   theirs("sum_eta_sqrt_c"), theirs("sum_eta_qbias"), decoded_second_moment=other[j, "G_decoded_estimate", None])
        traj = trajectory_bound(mine("loss_drop"), theirs("traj_bias_sum"), theirs("traj_curvature_sum"), sum_eta)
        out += [{"step": step, "module": j, "metric": "held_out_bound", "value": float(glob)},
                {"step": step, "module": j, "metric": "held_out_trajectory_bound", "value": float(traj)}]
    return out
