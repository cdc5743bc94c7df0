"""Each method's plan (`dglsim.schedule.plan`): K devices, one module each, `steps` mini-batches of
`batch` samples. What each action computes with real updates is `dglsim.train.scheduled`; the
semantics below are the contract both sides follow.

- gpipe (Huang et al. 2019): each mini-batch is split into m micro-batches; a device runs the
  forwards of all m, then their backwards (micro-batch 0 first), then one update. Fill and drain
  every mini-batch. Device j's forward of the next mini-batch follows its own update, so every
  forward uses weights after the same number of updates as single-process backprop with
  gradient accumulation: the same math.
- 1f1b (PipeDream-flush, Narayanan et al. 2021): the same micro-batches and the same flush per
  mini-batch; device j runs min(K-1-j, m) forwards, then alternates one forward and one
  backward, then drains its backwards. The same math as gpipe; device j keeps at most
  min(K-j, m) stashes instead of m.
- ddg (Huo et al. 2018, decoupled parallel backprop with delayed gradients): the forward stays
  locked (device j's forward of batch t needs device j-1's forward of t); the backward is
  decoupled: at step t device j back-propagates batch t-(K-1-j) through the graph it kept for
  it, with the gradient device j+1 computed for that batch, and updates. The gradient thus
  applied is K-1-j steps old. After the last forward a device drains its remaining backwards.
- features_replay (Huo et al. 2018, NeurIPS): like ddg, but the forward of a new batch keeps no
  graph, only the module's input; the backward of batch t-(K-1-j) first recomputes the
  forward on the stored input with the current weights (the replay), then back-propagates
  the stale gradient. The last device's forward keeps its graph (its gradient is never stale).
- dni / cdni (Jaderberg et al. 2017): device j < K-1 updates at once with a synthetic gradient
  its synthesizer predicts from its output (and the labels, for cdni); it sends its output on
  and, one step later, trains the synthesizer on the gradient device j+1 sent back for that
  output (device j+1's own backward, itself through a synthetic gradient: bootstrapping). We
  take the synthesizer update one step late so that no device waits for a gradient: the paper
  leaves the order open.
- dgl (Belilovsky et al. 2020, synchronous): each device takes a local step on each mini-batch
  as its predecessor's output arrives; queues are unbounded. (Asynchronous DGL samples a
  replay buffer by a policy at run time, so it is not a static plan: it runs on
  `dglsim.sim.pipeline`.)
- greedy (sequential, Belilovsky et al. 2019): module j trains alone for all its steps, on the
  outputs of modules 0..j-1, which are frozen (forward_only, pipelined on their devices); then
  module j+1. Its wall-clock is the sum over modules. Steps of phase p are numbered p*steps + t.
"""

from __future__ import annotations

from typing import Callable

from dglsim.errors import InvalidArgument
from dglsim.schedule.plan import Action, Hold, Plan, check_plan

__all__ = ["PLANS", "build_plan", "MICRO_BATCHED"]

MICRO_BATCHED = ("gpipe", "1f1b")  # the plans that split a mini-batch into micro-batches


def _micro_sizes(batch: int, m: int) -> list[int]:
    """Samples of each micro-batch: torch.tensor_split's sizes (they differ by at most one)."""
    return [batch // m + (1 if i < batch % m else 0) for i in range(m)]


def _pipeline_backprop(k: int, steps: int, batch: int, m: int, order: Callable[[int], list[tuple[str, int]]], name: str) -> Plan:
    sizes = _micro_sizes(batch, m)
    devices: list[list[Action]] = [[] for _ in range(k)]
    holds = []
    for t in range(steps):
        for j in range(k):
            for kind, i in order(j):
                if kind == "forward":
                    needs = ((j - 1, "forward", t, i),) if j > 0 else ()
                    holds.append(Hold(j, "stash", sizes[i], (j, "forward", t, i), (j, "backward", t, i)))
                else:
                    needs = ((j + 1, "backward", t, i),) if j < k - 1 else ()
                devices[j].append(Action(j, kind, t, i, needs))
            devices[j].append(Action(j, "update", t))
    return Plan(name, devices, holds, batch)


def gpipe(k: int, steps: int, batch: int, micro_batches: int = 4) -> Plan:
    m = micro_batches
    return _pipeline_backprop(k, steps, batch, m, lambda j: [("forward", i) for i in range(m)] + [("backward", i) for i in range(m)], "gpipe")


def one_f_one_b(k: int, steps: int, batch: int, micro_batches: int = 4) -> Plan:
    m = micro_batches

    def order(j: int) -> list[tuple[str, int]]:
        warmup = min(k - 1 - j, m)
        seq = [("forward", i) for i in range(warmup)]
        for i in range(m - warmup):
            seq += [("forward", warmup + i), ("backward", i)]
        return seq + [("backward", i) for i in range(m - warmup, m)]

    return _pipeline_backprop(k, steps, batch, m, order, "1f1b")


def _delayed(k: int, steps: int, batch: int, name: str, replay: bool) -> Plan:
    """ddg (replay=False) and features_replay (replay=True): see the module docstring."""
    devices: list[list[Action]] = [[] for _ in range(k)]
    holds = []
    for j in range(k):
        delay = k - 1 - j
        last = j == k - 1
        fwd = "forward_only" if replay and not last else "forward"
        bwd = "replay" if replay and not last else "backward"
        for t in range(steps + delay):
            if t < steps:
                devices[j].append(Action(j, fwd, t, 0, ((j - 1, "forward_only" if replay and j - 1 < k - 1 else "forward", t, 0),) if j > 0 else ()))
            back = t - delay
            if back >= 0:
                needs = ((j + 1, "replay" if replay and j + 1 < k - 1 else "backward", back, 0),) if not last else ()
                devices[j].append(Action(j, bwd, back, 0, needs))
                devices[j].append(Action(j, "update", back))
                if replay and not last:
                    holds.append(Hold(j, "input", batch, (j, fwd, back, 0), (j, bwd, back, 0)))
                    holds.append(Hold(j, "stash", batch, (j, bwd, back, 0), (j, bwd, back, 0)))
                else:
                    holds.append(Hold(j, "stash", batch, (j, fwd, back, 0), (j, bwd, back, 0)))
    return Plan(name, devices, holds, batch)


def ddg(k: int, steps: int, batch: int, micro_batches: int = 1) -> Plan:
    return _delayed(k, steps, batch, "ddg", replay=False)


def features_replay(k: int, steps: int, batch: int, micro_batches: int = 1) -> Plan:
    return _delayed(k, steps, batch, "features_replay", replay=True)


def _dni(k: int, steps: int, batch: int, name: str) -> Plan:
    devices: list[list[Action]] = [[] for _ in range(k)]
    holds = []
    for j in range(k):
        last = j == k - 1
        for t in range(steps + (0 if last else 1)):
            if t < steps:
                needs = ((j - 1, "dni_step", t, 0),) if j > 0 else ()
                devices[j].append(Action(j, "dni_step", t, 0, needs))
                holds.append(Hold(j, "stash", batch, (j, "dni_step", t, 0), (j, "dni_step", t, 0)))
            if not last and t >= 1:  # the synthesizer learns from batch t-1's true gradient
                devices[j].append(Action(j, "synth_update", t - 1, 0, ((j + 1, "dni_step", t - 1, 0),)))
                holds.append(Hold(j, "output", batch, (j, "dni_step", t - 1, 0), (j, "synth_update", t - 1, 0)))
    return Plan(name, devices, holds, batch)


def dni(k: int, steps: int, batch: int, micro_batches: int = 1) -> Plan:
    return _dni(k, steps, batch, "dni")


def cdni(k: int, steps: int, batch: int, micro_batches: int = 1) -> Plan:
    return _dni(k, steps, batch, "cdni")


def dgl(k: int, steps: int, batch: int, micro_batches: int = 1) -> Plan:
    devices = [[Action(j, "local", t, 0, ((j - 1, "local", t, 0),) if j > 0 else ()) for t in range(steps)] for j in range(k)]
    holds = [Hold(j, "stash", batch, (j, "local", t, 0), (j, "local", t, 0)) for j in range(k) for t in range(steps)]
    return Plan("dgl", devices, holds, batch)


def greedy(k: int, steps: int, batch: int, micro_batches: int = 1) -> Plan:
    devices: list[list[Action]] = [[] for _ in range(k)]
    holds = []
    for p in range(k):
        for t in range(p * steps, (p + 1) * steps):
            for j in range(p):
                devices[j].append(Action(j, "forward_only", t, 0, ((j - 1, "forward_only", t, 0),) if j > 0 else ()))
            devices[p].append(Action(p, "local", t, 0, ((p - 1, "forward_only", t, 0),) if p > 0 else ()))
            holds.append(Hold(p, "stash", batch, (p, "local", t, 0), (p, "local", t, 0)))
    return Plan("greedy", devices, holds, batch)


PLANS: dict[str, Callable[..., Plan]] = {
    "gpipe": gpipe, "1f1b": one_f_one_b, "ddg": ddg, "features_replay": features_replay,
    "dni": dni, "cdni": cdni, "dgl": dgl, "greedy": greedy,
}


def build_plan(method: str, k: int, steps: int, batch: int, micro_batches: int = 1, *, check: bool = True) -> Plan:
    """The plan of `method` (checked for deadlock unless check=False)."""
    if method not in PLANS:
        raise InvalidArgument(f"'method' of build_plan must be one of {list(PLANS)}, got {method!r}")
    for name, value, low in (("k", k, 1), ("steps", steps, 1), ("batch", batch, 1), ("micro_batches", micro_batches, 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise InvalidArgument(f"{name!r} of build_plan must be an int >= {low}, got {value!r}")
    if micro_batches > batch:
        raise InvalidArgument(f"'micro_batches' of build_plan must be at most the batch size {batch} (each micro-batch holds a sample), got {micro_batches}")
    if method not in MICRO_BATCHED and micro_batches != 1:
        raise InvalidArgument(f"'micro_batches' of build_plan must be 1 for {method!r} (only {list(MICRO_BATCHED)} split a mini-batch), got {micro_batches}")
    plan = PLANS[method](k, steps, batch, micro_batches)
    if check:
        check_plan(plan)
    return plan
