"""The all-reduce that closes a data-parallel update: its time among a module's N replicas.

The cost model is the alpha-beta (Hockney) model of Thakur, Rabenseifner and Gropp,
"Optimization of Collective Communication Operations in MPICH", IJHPCA 19(1), 2005, sec. 4:
sending n bytes between two processes takes alpha + n beta, with alpha the latency per message
and beta = 1 / bandwidth the seconds per byte; the reduction arithmetic is not counted (it runs
at memory speed, far below the link's time for gradients).

- ``ring``: a reduce-scatter then an all-gather around a ring (Patarasuk and Yuan, "Bandwidth
  optimal all-reduce algorithms for clusters of workstations", JPDC 69(2), 2009; the
  algorithm of NCCL and Horovod): 2 (N - 1) messages of n / N bytes each,
  T = 2 (N - 1) alpha + 2 (N - 1) / N * n beta. Bandwidth-optimal, latency linear in N.
- ``tree``: a binomial-tree reduce to one replica, then a binomial-tree broadcast (Thakur et
  al., sec. 4.4, the short-message algorithm): ceil(log2 N) rounds each way of the whole
  vector, T = 2 ceil(log2 N) (alpha + n beta). Latency logarithmic in N, bandwidth not optimal.

N = 1 takes no time: a module on one device has nothing to reduce.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from dglsim.constraints import Constraint, one_of, rate, real_at_least, validate_fields

__all__ = ["ALGORITHMS", "AllReduce"]

ALGORITHMS = ("ring", "tree")


@dataclass(frozen=True)
class AllReduce:
    algorithm: str = "ring"
    bandwidth: float = math.inf  # bytes/s per replica's link, one direction
    latency: float = 0.0  # seconds per message (alpha)

    CONSTRAINTS: ClassVar[dict[str, Constraint]] = {
        "algorithm": one_of(ALGORITHMS),
        "bandwidth": rate(),
        "latency": real_at_least(0),
    }

    def __post_init__(self) -> None:
        validate_fields(self, self.CONSTRAINTS)

    def seconds(self, replicas: int, nbytes: int) -> float:
        """Time of one all-reduce of `nbytes` among `replicas` devices."""
        if replicas <= 1:
            return 0.0
        beta = 0.0 if self.bandwidth == math.inf else 1.0 / self.bandwidth
        n = replicas
        if self.algorithm == "ring":
            return 2 * (n - 1) * self.latency + 2 * (n - 1) / n * nbytes * beta
        rounds = math.ceil(math.log2(n))
        return 2 * rounds * (self.latency + nbytes * beta)
