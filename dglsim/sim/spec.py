"""PipelineSpec: what to simulate, validated at the boundary; `spec_from_dict` reads the TOML form.

    mode = "async"              # "sync" | "async" | "paper"
    workers = 4                 # K modules, one simulated device each
    steps = 10000               # updates per worker (sync: items through the pipeline)
    seed = 0
    buffer = 5                  # async: buffer size M; sync: queue capacity (absent = unbounded)
    policy = "least_used"       # async/paper buffer policy: fifo | newest | uniform | least_used
    max_reuse = 10              # optional cap on how often an item is consumed
    compute = {kind = "gamma", mean = 0.01, cv = 0.2}   # one delay for all, or a list of K
    slowdown = [1, 2, 1, 1]     # per-worker factor on compute (paper mode: p_j ∝ 1/slowdown_j)
    latency = 1e-4              # per-link latency delay, one or a list of K-1
    bandwidth = 1e9             # bytes/s on every link (absent = infinite)
    payload_bytes = 524288      # bytes per item on each link, one or a list of K-1; an entry may
                                # be {shape = [128, 64, 16, 16], dtype = "float32"} (an activation)
    arrival = {kind = "exponential", mean = 0.02}   # optional: fresh items reach worker 0 as a renewal process

Data parallelism within a module (each module j on N_j replicas, `dglsim.sim.collectives`):

    replicas = [256, 256, 256, 256]   # N_j, one for all or a list of K (absent = 1)
    replica_slowdown = [1, [1, 1, 3, 1], 1, 1]   # per module: one factor for its replicas or a list of N_j
    gradient_bytes = [4e6, ...]       # bytes all-reduced per update of module j (its gradients)
    allreduce = {algorithm = "ring", bandwidth = 12.5e9, latency = 5e-6}   # or "tree"

An update of module j takes the slowest of its N_j replicas' compute times, each drawn from
the replica's own stream (its own slowdown, its own stragglers), then the all-reduce of
gradient_bytes[j] among them. A link carries each replica's share of the batch: the item's
bytes go over min(N_j, N_{j+1}) links in parallel. With one replica everywhere the spec is the
single-pipeline one, and its streams and trace are unchanged.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from dglsim.buffers import POLICIES
from dglsim.constraints import Constraint, int_at_least, one_of, optional, rate, renamed, validate_fields
from dglsim.delays import Constant, DelayModel, delay_from_spec
from dglsim.errors import InvalidArgument
from dglsim.limits import check_limit
from dglsim.sim.collectives import AllReduce

__all__ = ["PipelineSpec", "MODES", "spec_from_dict", "load_spec", "payload_size"]

MODES = ("sync", "async", "paper")
RENAMED = {"capacity": "buffer"}  # one name with RunConfig's `buffer`; the former one is read for one release
_KEYS = ("mode", "workers", "steps", "seed", "buffer", "policy", "max_reuse", "compute", "slowdown",
         "latency", "bandwidth", "payload_bytes", "arrival", "replicas", "replica_slowdown", "gradient_bytes", "allreduce")


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


@dataclass(frozen=True)
class PipelineSpec:
    mode: str
    workers: int
    steps: int
    compute: tuple[DelayModel, ...]
    seed: int = 0
    buffer: int | None = None  # items a consumer's queue (sync) or replay buffer (async, paper) holds
    policy: str = "least_used"
    max_reuse: int | None = None
    slowdown: tuple[float, ...] | None = None
    latency: tuple[DelayModel, ...] | None = None
    bandwidth: float = math.inf
    payload_bytes: tuple[int, ...] | None = None
    arrival: DelayModel | None = None
    replicas: tuple[int, ...] | None = None  # N_j per module (None: one each)
    replica_slowdown: tuple[tuple[float, ...], ...] | None = None  # per module, one factor per replica
    gradient_bytes: tuple[int, ...] | None = None  # per module, all-reduced per update
    allreduce: AllReduce | None = None

    CONSTRAINTS: ClassVar[dict[str, Constraint]] = {
        "mode": one_of(MODES),
        "workers": int_at_least(1),
        "steps": int_at_least(1),
        "seed": int_at_least(0),
        "buffer": optional(int_at_least(1), missing="absent"),
        "policy": one_of(tuple(POLICIES)),
        "max_reuse": optional(int_at_least(1), missing="absent"),
        "bandwidth": rate(),
        "allreduce": optional(Constraint("an AllReduce", lambda v: isinstance(v, AllReduce), ("ring", 1.0)), missing="absent"),
    }

    def __post_init__(self) -> None:
        k = self.workers
        validate_fields(self, self.CONSTRAINTS)
        check_limit("workers", k, "'workers' of PipelineSpec")
        check_limit("updates", self.steps, "'steps' of PipelineSpec")
        if self.mode in ("async", "paper") and self.buffer is None and k > 1:
            raise InvalidArgument(f"'buffer' of PipelineSpec must be an int >= 1 (the buffer size M) in {self.mode} mode, got None")
        self._check_per("compute", self.compute, k, lambda d: isinstance(d, DelayModel), "a delay model")
        if self.slowdown is not None:
            self._check_per("slowdown", self.slowdown, k, lambda s: isinstance(s, (int, float)) and s > 0 and math.isfinite(s), "a finite real > 0")
        if self.latency is not None:
            self._check_per("latency", self.latency, k - 1, lambda d: isinstance(d, DelayModel), "a delay model")
        if self.payload_bytes is not None:
            self._check_per("payload_bytes", self.payload_bytes, k - 1, lambda b: _int(b) and b >= 0, "an int >= 0")
        self._check_replicas()

    def _check_replicas(self) -> None:
        k = self.workers
        if self.replicas is not None:
            self._check_per("replicas", self.replicas, k, lambda n: _int(n) and n >= 1, "an int >= 1")
            check_limit("devices", sum(self.replicas), "'replicas' of PipelineSpec (summed over modules)")
        if self.replica_slowdown is not None:
            counts = self.replicas or (1,) * k
            ok = (isinstance(self.replica_slowdown, tuple) and len(self.replica_slowdown) == k
                  and all(isinstance(f, tuple) and len(f) == n and all(isinstance(x, (int, float)) and not isinstance(x, bool) and 0 < x < math.inf for x in f)
                          for f, n in zip(self.replica_slowdown, counts)))
            if not ok:
                raise InvalidArgument(f"'replica_slowdown' of PipelineSpec must be {k} tuples, tuple j of N_j = replicas[j] finite reals > 0 ({list(counts)}), got {self.replica_slowdown!r}")
        if self.gradient_bytes is not None:
            self._check_per("gradient_bytes", self.gradient_bytes, k, lambda b: _int(b) and b >= 0, "an int >= 0")
        if (self.gradient_bytes is None) != (self.allreduce is None):
            raise InvalidArgument("'gradient_bytes' and 'allreduce' of PipelineSpec go together (what is all-reduced, and how), "
                                  f"got gradient_bytes {self.gradient_bytes!r} and allreduce {self.allreduce!r}")
    @staticmethod
    def _check_per(name: str, values: tuple, n: int, ok, rule: str) -> None:
        if not isinstance(values, tuple) or len(values) != n or not all(ok(v) for v in values):
            raise InvalidArgument(f"{name!r} of PipelineSpec must be {n} values, each {rule}, got {values!r}")

    @property
    def k(self) -> int:
        return self.workers

    def compute_model(self, j: int) -> DelayModel:
        return self.compute[j].scaled(self.slowdown[j] if self.slowdown else 1.0)

    def replicas_of(self, j: int) -> int:
        return self.replicas[j] if self.replicas else 1

    @property
    def devices(self) -> int:
        return sum(self.replicas) if self.replicas else self.workers

    def replica_model(self, j: int, r: int) -> DelayModel:
        """Compute time of replica r of module j: the module's model times the replica's slowdown."""
        base = self.compute_model(j)
        return base.scaled(self.replica_slowdown[j][r]) if self.replica_slowdown else base

    def allreduce_seconds(self, j: int) -> float:
        """Time of the all-reduce that closes each update of module j (0 on one replica)."""
        if self.allreduce is None:
            return 0.0
        return self.allreduce.seconds(self.replicas_of(j), self.gradient_bytes[j])

    def link_rate(self, j: int) -> float:
        """Bytes/s of the link from module j to j+1: each replica sends its share of the item,
        so min(N_j, N_{j+1}) links carry it side by side."""
        return self.bandwidth * min(self.replicas_of(j), self.replicas_of(j + 1))

    def link_delay(self, j: int) -> tuple[DelayModel, float]:
        """(latency model, transfer seconds) of the link from worker j to j+1."""
        latency = self.latency[j] if self.latency else Constant(0.0)
        size = self.payload_bytes[j] if self.payload_bytes else 0
        return latency, (size / self.link_rate(j) if self.bandwidth != math.inf else 0.0)

    def bytes_on(self, j: int) -> int:
        return self.payload_bytes[j] if self.payload_bytes else 0


def payload_size(shape: Any, dtype: str, *, where: str) -> int:
    """Bytes of an activation of `shape` and numpy `dtype` (what a module sends per item)."""
    import numpy as np

    if not isinstance(shape, (list, tuple)) or not all(_int(d) and d >= 1 for d in shape):
        raise InvalidArgument(f"'shape' of {where} must be a list of ints >= 1, got {shape!r}")
    try:
        itemsize = np.dtype(dtype).itemsize
    except TypeError as exc:
        raise InvalidArgument(f"'dtype' of {where} must be a numpy dtype name such as 'float32', got {dtype!r}") from exc
    return int(np.prod(shape)) * itemsize


def _bytes_entry(value: Any, where: str) -> Any:
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"shape", "dtype"})
        if unknown or "shape" not in value:
            raise InvalidArgument(f"{where} must be an int or a table {{shape = [...], dtype = \"float32\"}}, got {value!r}")
        return payload_size(value["shape"], value.get("dtype", "float32"), where=where)
    return value


def _per(value: Any, n: int, key: str, convert) -> tuple | None:
    if value is None:
        return None
    values = value if isinstance(value, list) else [value] * n
    return tuple(convert(v, f"{key}[{i}]") for i, v in enumerate(values))


def spec_from_dict(doc: dict[str, Any], *, where: str = "spec") -> PipelineSpec:
    doc = renamed(doc, RENAMED, where=where)
    unknown = sorted(set(doc) - set(_KEYS))
    if unknown:
        raise InvalidArgument(f"unknown key {unknown[0]!r} in {where}; known keys: {', '.join(_KEYS)}")
    for required in ("mode", "workers", "steps", "compute"):
        if required not in doc:
            raise InvalidArgument(f"{where} must set {required!r}")
    k = doc["workers"]
    if not _int(k) or k < 1:
        raise InvalidArgument(f"'workers' of PipelineSpec must be an int >= 1, got {k!r}")
    delay = lambda v, key: delay_from_spec(v, where=key)  # noqa: E731
    return PipelineSpec(
        mode=doc["mode"], workers=k, steps=doc["steps"], seed=doc.get("seed", 0),
        buffer=doc.get("buffer"), policy=doc.get("policy", "least_used"), max_reuse=doc.get("max_reuse"),
        compute=_per(doc["compute"], k, "compute", delay),
        slowdown=_per(doc.get("slowdown"), k, "slowdown", lambda v, key: v),
        latency=_per(doc.get("latency"), k - 1, "latency", delay),
        bandwidth=doc.get("bandwidth", math.inf),
        payload_bytes=_per(doc.get("payload_bytes"), k - 1, "payload_bytes", _bytes_entry),
        arrival=delay(doc["arrival"], "arrival") if "arrival" in doc else None,
        replicas=_per(doc.get("replicas"), k, "replicas", lambda v, key: v),
        replica_slowdown=_replica_slowdown(doc.get("replica_slowdown"), doc.get("replicas", 1), k),
        gradient_bytes=_per(doc.get("gradient_bytes"), k, "gradient_bytes", lambda v, key: int(v) if isinstance(v, float) and v.is_integer() else v),
        allreduce=_allreduce(doc["allreduce"], where) if "allreduce" in doc else None,
    )


def _replica_slowdown(value: Any, replicas: Any, k: int) -> tuple | None:
    """Per module: a list of N_j factors, or one factor for all its replicas."""
    if value is None:
        return None
    counts = replicas if isinstance(replicas, list) else [replicas] * k
    values = value if isinstance(value, list) else [value] * k
    if len(values) != k or len(counts) != k:
        raise InvalidArgument(f"'replica_slowdown' must be one entry per module ({k}), got {value!r}")
    return tuple(tuple(v) if isinstance(v, list) else (v,) * n for v, n in zip(values, counts))


def _allreduce(value: Any, where: str) -> AllReduce:
    if not isinstance(value, dict) or sorted(set(value) - {"algorithm", "bandwidth", "latency"}):
        raise InvalidArgument(f"'allreduce' of {where} must be a table {{algorithm = \"ring\" | \"tree\", bandwidth = bytes/s, latency = s}}, got {value!r}")
    return AllReduce(**value)


def load_spec(path: str | Path) -> PipelineSpec:
    path = Path(path)
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InvalidArgument(f"spec file {str(path)!r} must be readable TOML (UTF-8): {exc}") from exc
    return spec_from_dict(doc, where=path.name)
