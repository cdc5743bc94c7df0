"""A scheduled run's costs and memory from its RunConfig and network: what each action of the
plan costs on the declared cluster (`ActionCosts`), and what each device holds (`DeviceMemory`).

Durations come from the declared cluster's seconds per DGL update (dglsim.recipe.cluster) and
the network's multiply-accumulates (the head's and a DNI synthesizer's share of the stage's).
Messages: an activation is the float32 output and its int64 label per sample; a gradient the
float32 gradient of the output. Memory: parameters and SGD momentum (one buffer per parameter
when momentum > 0) of the stage, the heads the method trains and a DNI synthesizer, in their
dtype's bytes; the stash per sample measured from autograd's saved tensors
(dglsim.models.summary.stash_bytes_per_sample), inputs and outputs per sample in float32.
"""

from __future__ import annotations

import math

from torch import nn

from dglsim.cluster import link_times
from dglsim.models.decoupled import DecoupledNet
from dglsim.models.summary import stash_bytes_per_sample, summarize
from dglsim.models.synthesizer import GradientSynthesizer
from dglsim.recipe.cluster import compute_model, slowdowns
from dglsim.recipe.config import RunConfig
from dglsim.schedule import ActionCosts, DeviceMemory
from dglsim.train.scheduled import LOCAL_LOSS_METHODS

__all__ = ["action_costs", "device_memory", "LABEL_BYTES", "FLOAT_BYTES"]

LABEL_BYTES, FLOAT_BYTES = 8, 4  # an int64 label, a float32 value


def _synthesizers(net: DecoupledNet, method: str, classes: int) -> list[GradientSynthesizer | None]:
    if method not in ("dni", "cdni"):
        return [None] * net.k
    shapes = net.output_shapes()
    return [GradientSynthesizer(shapes[j], classes, conditioned=method == "cdni") for j in range(net.k - 1)] + [None]


def action_costs(cfg: RunConfig, net: DecoupledNet, step_seconds: tuple[float, ...]) -> ActionCosts:
    """`cfg`'s plan costs on its declared cluster (module j's DGL update takes step_seconds[j])."""
    summary = summarize(net)
    shapes = net.output_shapes()
    synths = _synthesizers(net, cfg.schedule, cfg.classes)
    latency, bandwidth, _ = link_times(cfg.link, cfg.latency, cfg.bandwidth)
    elements = [math.prod(s) for s in shapes[:-1]]
    return ActionCosts(
        step_seconds=tuple(step_seconds),
        head_share=tuple(r.head_macs / r.stage_macs for r in summary),
        synth_share=tuple((s.macs_per_sample(shapes[j]) / summary[j].stage_macs) if s is not None else 0.0 for j, s in enumerate(synths)),
        slowdown=slowdowns(cfg), jitter=compute_model(cfg, 1.0),
        activation_bytes=tuple(FLOAT_BYTES * e + LABEL_BYTES for e in elements), gradient_bytes=tuple(FLOAT_BYTES * e for e in elements),
        latency=latency, bandwidth=bandwidth,
    )


def _bytes(module: nn.Module | None) -> int:
    return 0 if module is None else sum(p.numel() * p.element_size() for p in module.parameters())


def device_memory(cfg: RunConfig, net: DecoupledNet, method: str) -> DeviceMemory:
    """What each device of `method` holds: see the module docstring. `method` is a plan's name
    (asynchronous DGL on the pipeline simulator holds what the DGL plan's devices hold, plus its buffers)."""
    optimizer_copies = 1 if cfg.momentum > 0 else 0
    trained_heads = range(net.k) if method in LOCAL_LOSS_METHODS else [net.k - 1]
    synths = _synthesizers(net, method, cfg.classes)
    inputs = [net.input_shape, *net.output_shapes()]
    static, stash = [], []
    for j in range(net.k):
        held = _bytes(net.stages[j]) + (_bytes(net.heads[j]) if j in trained_heads else 0) + _bytes(synths[j])
        static.append(held * (1 + optimizer_copies))
        stages = nn.Sequential(net.stages[j], net.heads[j]) if j in trained_heads else net.stages[j]
        stash.append(stash_bytes_per_sample(stages, inputs[j]))
    per_sample = {"stash": tuple(stash), "input": tuple(FLOAT_BYTES * math.prod(s) for s in inputs[:-1]),
                  "output": tuple(FLOAT_BYTES * math.prod(s) for s in inputs[1:])}
    return DeviceMemory(tuple(static), per_sample)


