"""The validated description of one run: `RunConfig`, and `parse_assignment` for --set.

Every key of a study's [base] table, of a dist config and of --set is a field of RunConfig; an
unknown key or a bad value is an InvalidArgument naming the key, the rule and the value, raised
when the config is built, before anything runs. The objects a run needs are built from it by the
rest of dglsim.recipe, each in one place.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
from dataclasses import dataclass
from typing import Any, ClassVar

from dglsim.buffers import POLICIES
from dglsim.cluster import CLUSTER_KINDS, DEVICES, LINKS, is_cluster
from dglsim.constraints import Constraint, boolean, int_at_least, one_of, optional, positive_real, real_in, renamed, validate_fields
from dglsim.errors import InvalidArgument
from dglsim.limits import check_limit
from dglsim.models.decoupled import NetworkSpec
from dglsim.quant import FAMILIES, QuantConfig, VQConfig
from dglsim.schedule import MICRO_BATCHED, PLANS
from dglsim.train.methods import METHODS, TrainConfig
from dglsim.train.optim import OptimConfig

__all__ = ["RunConfig", "parse_assignment", "METHOD_CHOICES", "PIPELINES", "DATASETS", "JITTER_FAMILIES", "RENAMED"]

DATASETS = ("cifar10", "imagenette")
# "simulated": DGL with its updates ordered by the pipeline simulator; "distributed": real
# multi-process DGL on torch.distributed (dglsim.ranks), one rank per module; "timing": the
# simulated schedule alone (no training, no data), for studies of clusters too large to train on;
# "scheduled": a method's plan (`schedule`: GPipe, 1F1B, DDG, features replay, DNI, cDNI, DGL,
# greedy; dglsim.schedule) executed in simulated time with its real updates
METHOD_CHOICES = (*METHODS, "simulated", "distributed", "timing", "scheduled")
PIPELINES = ("sync", "async", "paper")
# lognormal_straggler: lognormal jitter, and with probability straggler_q a step straggler_factor slower
JITTER_FAMILIES = ("constant", "lognormal", "straggler", "lognormal_straggler")
ALLREDUCE_ALGORITHMS = ("ring", "tree")  # dglsim.sim.collectives
# keys renamed so that one concept has one name; the old ones are read, with a warning, for one release
RENAMED = {"delay": "compute_jitter"}
# keys added after stores were written: at their default they are left out of the key's digest,
# so a config that does not use them keeps the key it had (and its stored results)
ADDED_KEYS = {"schedule": None, "micro_batches": 1, "optimizer": OptimConfig.optimizer, "lr_milestones": OptimConfig.lr_milestones}
_NETWORK_KEYS = tuple(f.name for f in dataclasses.fields(NetworkSpec))
_OPTIM_KEYS = tuple(f.name for f in dataclasses.fields(OptimConfig))
_TRAIN_KEYS = ("epochs", "batch_size", "eval_every", "ensemble")


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines one run. Stored as given; its hash keys the results store."""

    method: str = "dgl"
    seed: int = 0
    dataset: str = "cifar10"
    train_per_class: int | None = None  # None: the whole training split
    test_per_class: int | None = None
    subset_seed: int = 0  # which subset; fixed across seeds so seeds vary only the training
    # "random": per-class subsets drawn with subset_seed; "first": the first train_per_class
    # images of each class and the first test_per_class x classes test images, in file order
    subset: str = "random"
    normalization: str = "dataset"  # "dataset": the training split's statistics; "authors": the authors' CIFAR-10 constants
    augment: bool = True
    device: str = "auto"  # "auto": cuda when available, else cpu
    # network (NetworkSpec) and training (TrainConfig / OptimConfig): flat, so that every key
    # can be set with --set key=value; the defaults are those of the parts.
    arch: str = NetworkSpec.arch
    k: int = NetworkSpec.k
    width: int | None = NetworkSpec.width
    depth: int | None = NetworkSpec.depth
    splits: tuple[int, ...] | None = NetworkSpec.splits
    head: str = NetworkSpec.head
    head_width: int | None = NetworkSpec.head_width
    classes: int = NetworkSpec.classes
    input_shape: tuple[int, int, int] = NetworkSpec.input_shape
    epochs: int = TrainConfig.epochs
    batch_size: int = TrainConfig.batch_size
    eval_every: int = TrainConfig.eval_every
    optimizer: str = OptimConfig.optimizer  # sgd | adam (momentum is Adam's beta1)
    lr: float = OptimConfig.lr
    momentum: float = OptimConfig.momentum
    weight_decay: float = OptimConfig.weight_decay
    lr_decay: float = OptimConfig.lr_decay
    lr_decay_every: int = OptimConfig.lr_decay_every
    lr_milestones: tuple[int, ...] | None = OptimConfig.lr_milestones
    nesterov: bool = OptimConfig.nesterov
    reset_on_decay: bool = OptimConfig.reset_on_decay
    ensemble: str = TrainConfig.ensemble
    # simulated time (method "simulated" only)
    pipeline: str = "async"  # sync | async | paper (dglsim.sim modes; distributed: sync | async)
    buffer: int = 5  # async/paper: replay buffer size M in mini-batches; sync: queue capacity
    policy: str = "least_used"
    max_reuse: int | None = None
    slowed: int = 1  # the module whose device is slowed
    slowdown: float = 1.0  # its compute-time factor (the authors' noise n is 1 / (1 - n))
    compute_jitter: str = "constant"  # how each step's compute time varies around the module's base time (links have `latency`)
    jitter_cv: float = 0.2  # lognormal: coefficient of variation
    straggler_q: float = 0.05  # straggler: probability that a step is slow
    straggler_factor: float = 4.0  # straggler: how much slower
    # The simulated cluster (dglsim.cluster): "balanced" (every module compute_time seconds per
    # update, 10 ms when None), a device name or one per module (roofline times at
    # `efficiency`), "given" (compute_time states the times), or "profile" (measured once per
    # study on this machine; the runner writes the measured times into compute_time).
    cluster: str | tuple[str, ...] = "balanced"
    efficiency: float = 0.5  # device clusters: fraction of the roofline's peaks the kernels reach
    compute_time: float | tuple[float, ...] | None = None  # base seconds per update: one for all modules, or one per module
    link: str | None = None  # a named link for every link (dglsim.cluster.LINKS); None: latency and bandwidth below
    latency: float = 0.0  # seconds per link transfer
    bandwidth: float | None = None  # bytes/s of every link; None: infinite
    evals: int = 10  # evaluations spread over the expected run (paper mode: over the expected steps)
    # what travels on the links and sits in the buffers (methods "simulated" and "distributed"; dglsim.quant)
    quant: str = "none"  # none | vq | uniform | stochastic
    quant_bits: int = 8  # uniform / stochastic
    codes: int = 256  # vq: K codes per group
    groups: int = 1  # vq: N groups of C/N channels (product quantization)
    gamma: float = 0.99  # vq: EMA decay of the codebook statistics
    codebook_every: int = 10  # vq: producer batches between codebook publications
    codebook_dtype: str = "float32"  # vq: the published codebook's wire type
    stages: int = 1  # vq: R residual stages (dglsim.quant.residual)
    codebook_init: str = "random"  # vq: random | kmeans++ (on the first batch)
    lloyd_iters: int = 0  # vq: Lloyd iterations after kmeans++ seeding
    code_format: str = "bytes"  # vq: bytes | packed | zstd: how codes travel and are held
    codebook_update: str = "full"  # vq: full | delta: what a codebook publication sends
    # the convergence theory's quantities (dglsim.theory) estimated at every evaluation, with
    # the corollary's bound computed from them (method "simulated" only)
    theory: bool = False
    # theory: epochs of the reference run, the same network and setting trained from the same
    # start for longer (to convergence): its producers' outputs stand for the limit law q*
    reference_epochs: int | None = None
    in_flight: int = 2  # method "distributed", sync: items in flight between two ranks (the simulated twin's queue capacity)
    # data parallelism (method "timing"): every module on `replicas` devices, each on a batch of
    # batch_size (a module's update takes replicas x batch_size samples), closed by an all-reduce
    # of the module's gradients over the run's link
    replicas: int = 1
    allreduce: str = "ring"
    steps: int = 2000  # method "timing": updates per module
    # method "scheduled": which plan (dglsim.schedule.PLANS), and micro-batches per mini-batch (gpipe, 1f1b)
    schedule: str | None = None
    micro_batches: int = 1

    CONSTRAINTS: ClassVar[dict[str, Constraint]] = {
        "method": one_of(METHOD_CHOICES),
        "seed": int_at_least(0),
        "dataset": one_of(DATASETS),
        "train_per_class": optional(int_at_least(1)),
        "test_per_class": optional(int_at_least(1)),
        "subset_seed": int_at_least(0),
        "subset": one_of(("random", "first")),
        "normalization": one_of(("dataset", "authors")),
        "augment": boolean(),
        "device": Constraint("'auto', 'cpu', 'cuda' or 'cuda:N'", lambda v: isinstance(v, str) and (v in ("auto", "cpu", "cuda") or (v.startswith("cuda:") and v[5:].isdigit())), ("gpu", 0)),
        "pipeline": one_of(PIPELINES),
        "buffer": int_at_least(1),
        "policy": one_of(tuple(POLICIES)),
        "max_reuse": optional(int_at_least(1)),
        "slowed": int_at_least(0),
        "slowdown": positive_real(),
        "compute_jitter": one_of(JITTER_FAMILIES),
        "jitter_cv": positive_real(),
        "straggler_q": real_in(0.0, 1.0),
        "straggler_factor": Constraint("a finite real >= 1", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 1 <= v < float("inf"), (0.5, "2")),
        "compute_time": Constraint(
            "None, a finite real > 0, or a tuple of them (one per module)",
            lambda v: v is None or positive_real().holds(v) or (isinstance(v, tuple) and len(v) > 0 and all(positive_real().holds(t) for t in v)),
            (0.0, -1.0, (), (0.1, 0.0), "fast"),
        ),
        "cluster": Constraint(f"one of {list(CLUSTER_KINDS)}, a device name of {sorted(DEVICES)}, or a tuple of device names (one per module)", is_cluster, ("fast", ("a100", "tpu"), (), 3)),
        "efficiency": real_in(0.0, 1.0, low_open=True),
        "link": optional(one_of(sorted(LINKS))),
        "latency": real_in(0.0, 3600.0),
        "bandwidth": optional(positive_real()),
        "evals": int_at_least(1),
        "quant": one_of(FAMILIES),
        "quant_bits": QuantConfig.CONSTRAINTS["bits"],
        "codes": VQConfig.CONSTRAINTS["codes"],
        "groups": VQConfig.CONSTRAINTS["groups"],
        "gamma": VQConfig.CONSTRAINTS["gamma"],
        "codebook_every": QuantConfig.CONSTRAINTS["codebook_every"],
        "codebook_dtype": QuantConfig.CONSTRAINTS["codebook_dtype"],
        "stages": VQConfig.CONSTRAINTS["stages"],
        "codebook_init": VQConfig.CONSTRAINTS["init"],
        "lloyd_iters": VQConfig.CONSTRAINTS["lloyd_iters"],
        "code_format": QuantConfig.CONSTRAINTS["code_format"],
        "codebook_update": QuantConfig.CONSTRAINTS["codebook_update"],
        "theory": boolean(),
        "reference_epochs": optional(int_at_least(1)),
        "in_flight": int_at_least(1),
        "replicas": int_at_least(1),
        "allreduce": one_of(ALLREDUCE_ALGORITHMS),
        "steps": int_at_least(1),
        "schedule": optional(one_of(tuple(PLANS))),
        "micro_batches": int_at_least(1),
    }

    def __post_init__(self) -> None:
        validate_fields(self, self.CONSTRAINTS)
        self.network_spec(), self.train_config(), self.quant_config()  # validate the parts with their own rules
        check_limit("evals", self.evals, "'evals' of RunConfig")
        if self.normalization == "authors" and self.dataset != "cifar10":
            raise InvalidArgument(f"'normalization' of RunConfig must be 'dataset' unless dataset is 'cifar10' (the authors' constants are CIFAR-10's), got 'authors' with dataset {self.dataset!r}")
        if self.slowed >= self.k:
            raise InvalidArgument(f"'slowed' of RunConfig must be a module index < k = {self.k}, got {self.slowed}")
        if self.quant != "none" and self.method not in ("simulated", "distributed"):
            raise InvalidArgument(f"'quant' of RunConfig must be 'none' unless method is 'simulated' or 'distributed' (quantization acts on the links), got {self.quant!r} with method {self.method!r}")
        if self.theory and self.method != "simulated":
            raise InvalidArgument(f"'theory' of RunConfig must be false unless method is 'simulated' (the estimates need a simulated run's per-update record), got true with method {self.method!r}")
        if self.theory and (self.reference_epochs is None or self.reference_epochs <= self.epochs):
            raise InvalidArgument(f"'reference_epochs' of RunConfig must be an int > epochs = {self.epochs} when theory is true (the limit law q* comes from "
                                  f"the same network trained longer), got {self.reference_epochs!r}")
        if self.theory:
            self._check_plain_sgd()
        if not self.theory and self.reference_epochs is not None:
            raise InvalidArgument(f"'reference_epochs' of RunConfig must be None unless theory is true (only the theory's estimates use the reference run), got {self.reference_epochs!r}")
        if self.method == "distributed" and self.pipeline == "paper":
            raise InvalidArgument("'pipeline' of RunConfig must be 'sync' or 'async' with method 'distributed' (paper mode is a simulator schedule), got 'paper'")
        if isinstance(self.compute_time, tuple) and len(self.compute_time) != self.k:
            raise InvalidArgument(f"'compute_time' of RunConfig must hold k = {self.k} times when it is a tuple, got {self.compute_time!r}")
        if self.replicas != 1 and self.method != "timing":
            raise InvalidArgument(f"'replicas' of RunConfig must be 1 unless method is 'timing' (study runs of data-parallel modules are timing-only; "
                                  f"training shards a batch with dglsim.train.steps.local_step(replicas=N)), got {self.replicas!r} with method {self.method!r}")
        if self.method == "timing" and self.theory:
            raise InvalidArgument("'theory' of RunConfig must be false with method 'timing' (no training), got true")
        self._check_cluster()
        self._check_schedule()

    def _check_schedule(self) -> None:
        if (self.method == "scheduled") != (self.schedule is not None):
            raise InvalidArgument(f"'schedule' of RunConfig must name a plan of {list(PLANS)} when method is 'scheduled', and be None otherwise, "
                                  f"got {self.schedule!r} with method {self.method!r}")
        if self.micro_batches != 1 and self.schedule not in MICRO_BATCHED:
            raise InvalidArgument(f"'micro_batches' of RunConfig must be 1 unless schedule is one of {list(MICRO_BATCHED)} (the others take whole mini-batches), "
                                  f"got {self.micro_batches!r} with schedule {self.schedule!r}")
        if self.micro_batches > self.batch_size:
            raise InvalidArgument(f"'micro_batches' of RunConfig must be at most batch_size = {self.batch_size} (a micro-batch holds a sample), got {self.micro_batches!r}")

    def _check_plain_sgd(self) -> None:
        """The proofs analyze theta_{t+1} = theta_t - eta_t g_t with E[g_t | F_t] the gradient of the
        loss the estimates measure (on the whole training set): Adam, momentum, weight decay and
        augmentation would each make the run something the bounds do not speak of."""
        for name, plain in (("optimizer", "sgd"), ("momentum", 0.0), ("weight_decay", 0.0), ("augment", False)):
            if getattr(self, name) != plain:
                raise InvalidArgument(f"'{name}' of RunConfig must be {plain!r} when theory is true (the proofs analyze plain SGD on the training set's loss), got {getattr(self, name)!r}")

    def _check_cluster(self) -> None:
        """compute_time must say what the cluster needs, and nothing it would override."""
        c, t = self.cluster, self.compute_time
        if c == "balanced" and isinstance(t, tuple):
            raise InvalidArgument(f"'compute_time' of RunConfig must be None or one time with cluster 'balanced' (every module the same), got {t!r}; use cluster 'given' for per-module times")
        if c == "given" and t is None:
            raise InvalidArgument("'compute_time' of RunConfig must be set with cluster 'given' (the times it declares), got None")
        if c == "profile" and t is not None and not isinstance(t, tuple):
            raise InvalidArgument(f"'compute_time' of RunConfig must be None with cluster 'profile' (the runner measures it), got {t!r}")
        if c not in CLUSTER_KINDS and t is not None:
            raise InvalidArgument(f"'compute_time' of RunConfig must be None with device cluster {c!r} (the roofline gives the times), got {t!r}")
        if isinstance(c, tuple) and len(c) != self.k:
            raise InvalidArgument(f"'cluster' of RunConfig must name k = {self.k} devices when it is a tuple, got {c!r}")
        if self.link is not None and (self.latency != 0.0 or self.bandwidth is not None):
            raise InvalidArgument(f"'link' of RunConfig must be None when 'latency' or 'bandwidth' is set (the named link declares both), "
                                  f"got {self.link!r} with latency {self.latency!r}, bandwidth {self.bandwidth!r}")


    def quant_config(self) -> QuantConfig:
        vq = VQConfig(codes=self.codes, groups=self.groups, gamma=self.gamma, stages=self.stages, init=self.codebook_init, lloyd_iters=self.lloyd_iters)
        return QuantConfig(family=self.quant, bits=self.quant_bits, vq=vq, codebook_every=self.codebook_every, codebook_dtype=self.codebook_dtype,
                           code_format=self.code_format, codebook_update=self.codebook_update)

    def network_spec(self) -> NetworkSpec:
        return NetworkSpec(**{k: getattr(self, k) for k in _NETWORK_KEYS})

    def train_config(self) -> TrainConfig:
        optim = OptimConfig(**{k: getattr(self, k) for k in _OPTIM_KEYS})
        return TrainConfig(**{k: getattr(self, k) for k in _TRAIN_KEYS}, optim=optim)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def key(self) -> str:
        """A stable digest of the full config (the results store's primary key). It digests the
        keys under their former names, so that a store written before a rename still resumes."""
        former = {new: old for old, new in RENAMED.items()}
        digested = {former.get(k, k): v for k, v in self.as_dict().items() if not (k in ADDED_KEYS and v == ADDED_KEYS[k])}
        return hashlib.sha256(json.dumps(digested, sort_keys=True).encode()).hexdigest()[:20]

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_dict(cls, values: dict[str, Any], *, where: str) -> "RunConfig":
        values = renamed(values, RENAMED, where=where)
        unknown = sorted(set(values) - set(cls.keys()))
        if unknown:
            raise InvalidArgument(f"unknown key {unknown[0]!r} in {where}; known keys: {', '.join(cls.keys())}")
        # TOML has arrays, not tuples; tuple-valued fields take them as tuples.
        coerced = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        return cls(**coerced)


def parse_assignment(text: str) -> tuple[str, Any]:
    """'key=value' with a TOML value; a bare word that is not TOML is taken as a string."""
    if "=" not in text:
        raise InvalidArgument(f"'--set' must be key=value, got {text!r}")
    key, raw = (s.strip() for s in text.split("=", 1))
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, value


