"""Every run of a study checked before the first one starts: the rules that tie several keys
together and that a RunConfig alone cannot see (the network the keys build, the data they
name, the links the quantizer codes).

Each distinct network is built once (on the CPU, seed 0) to learn its module outputs; the data
shapes and sizes are declared per dataset, so nothing is loaded here.
"""

from __future__ import annotations

from dglsim.errors import InvalidArgument
from dglsim.limits import check_limit, check_memory
from dglsim.models import build_network, workloads
from dglsim.recipe.config import RunConfig

__all__ = ["check_runs", "DATASET_SHAPES"]

# (C, H, W) of the images, training images per class and classes of each dataset the study layer loads
DATASET_SHAPES = {"cifar10": ((3, 32, 32), 5000, 10), "imagenette": ((3, 64, 64), 450, 10)}


def _where(cfg: RunConfig) -> str:
    return f"(run seed {cfg.seed}, {cfg.method}, k={cfg.k}, pipeline {cfg.pipeline})"


def check_runs(runs: list[RunConfig]) -> None:
    """Raise InvalidArgument for the first run that would fail on its settings, naming the key."""
    outputs: dict = {}
    for cfg in runs:
        shape, per_class, classes = DATASET_SHAPES[cfg.dataset]
        if cfg.classes != classes:
            raise InvalidArgument(f"'classes' of RunConfig must be the {classes} classes of {cfg.dataset}, got {cfg.classes} {_where(cfg)}")
        if tuple(cfg.input_shape) != shape:
            raise InvalidArgument(f"'input_shape' of RunConfig must match the {cfg.dataset} images {shape}, got {tuple(cfg.input_shape)} {_where(cfg)}")
        images = (cfg.train_per_class or per_class) * cfg.classes
        if cfg.batch_size > images:
            raise InvalidArgument(f"'batch_size' of RunConfig must be <= the {images} training images of the run (train_per_class x classes), got {cfg.batch_size} {_where(cfg)}")
        spec = cfg.network_spec()
        if spec not in outputs:
            net = build_network(spec, seed=0)  # InvalidArgument for k, splits or depth
            outputs[spec] = (net.output_shapes(), sum(w.activations for w in workloads(net)))
        shapes, activations = outputs[spec]
        # a training step holds every activation and its gradient, in float32
        check_memory(8.0 * activations * cfg.batch_size, f"a batch of {cfg.batch_size} through the network", f"'batch_size' of RunConfig {_where(cfg)}")
        if cfg.method == "simulated" and cfg.pipeline == "paper":  # expected global steps until the least-picked module is done
            rates = [1.0 / (cfg.slowdown if j == cfg.slowed else 1.0) for j in range(cfg.k)]
            updates = cfg.epochs * (images // cfg.batch_size)
            check_limit("global_steps", updates * sum(rates) / min(rates), f"the paper-mode run of slowdown {cfg.slowdown!r} {_where(cfg)}")
        if cfg.schedule in ("dni", "cdni") and any(len(s) != 3 for s in shapes[:-1]):
            raise InvalidArgument(f"'schedule' {cfg.schedule!r} of RunConfig needs every module but the last to output a feature map (C, H, W) for its "
                                  f"convolutional synthesizer, got output shapes {shapes[:-1]} {_where(cfg)}")
        if cfg.quant == "vq":
            for j, (channels, *_) in enumerate(shapes[:-1]):
                if channels % cfg.groups:
                    raise InvalidArgument(f"'groups' of RunConfig must divide the {channels} channels of link {j} (module {j}'s output), got {cfg.groups} {_where(cfg)}")
