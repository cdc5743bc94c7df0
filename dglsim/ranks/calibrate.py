"""The simulator calibrated from a real trace: per-module compute and per-link transfer models
fitted on a short profiling run, then the pipeline spec that predicts another run.

- compute: each rank's update durations (finish - start), after `warmup` updates (the first
  steps pay for allocation and caches): their mean, and a log-normal of the same mean and
  coefficient of variation when the durations vary (cv > 1%), else a constant;
- links: each item's transfer time (the consumer's arrive - the producer's send): its median,
  as a constant delay per item. A link carries one message size, so its latency and bandwidth
  cannot be told apart from a run; the bandwidth benchmark measures both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dglsim.delays import AtLeast, Constant, DelayModel, lognormal
from dglsim.errors import InvalidArgument
from dglsim.sim import PipelineSpec

__all__ = ["Calibration", "fit_calibration", "calibrated_spec"]


@dataclass(frozen=True)
class Calibration:
    compute_s: tuple[float, ...]  # mean seconds per update, per module
    compute_cv: tuple[float, ...]
    link_s: tuple[float, ...]  # median seconds per item, per link
    updates: tuple[int, ...]  # durations each module's fit used

    def as_dict(self) -> dict:
        return {"compute_s": list(self.compute_s), "compute_cv": list(self.compute_cv), "link_s": list(self.link_s), "updates": list(self.updates)}


def fit_calibration(trace: np.ndarray, k: int, *, warmup: int = 2) -> Calibration:
    """Fit from a trace array (`Trace.to_array()`, or the CSV read back) of a K-rank run."""
    means, cvs, counts, links = [], [], [], []
    for j in range(k):
        starts = trace["time"][(trace["worker"] == j) & (trace["action"] == "start")]
        finishes = trace["time"][(trace["worker"] == j) & (trace["action"] == "finish")]
        durations = (finishes - starts[: len(finishes)])[warmup:]
        if durations.size < 2:
            raise InvalidArgument(f"'trace' of fit_calibration must hold more than warmup + 1 = {warmup + 1} updates of module {j}, got {durations.size + warmup}")
        means.append(float(durations.mean()))
        cvs.append(float(durations.std(ddof=1) / durations.mean()))
        counts.append(int(durations.size))
    for j in range(k - 1):
        sent = trace[(trace["worker"] == j) & (trace["action"] == "send")]
        arrived = trace[(trace["worker"] == j + 1) & (trace["action"] == "arrive")]
        when = dict(zip(sent["item"].tolist(), sent["time"].tolist()))
        transfers = [t - when[i] for i, t in zip(arrived["item"].tolist(), arrived["time"].tolist()) if i in when]
        if not transfers:
            raise InvalidArgument(f"'trace' of fit_calibration must hold sends and arrivals on link {j}, got none")
        links.append(float(max(0.0, np.median(transfers))))
    return Calibration(tuple(means), tuple(cvs), tuple(links), tuple(counts))


def calibrated_spec(cal: Calibration, *, mode: str, steps: int, seed: int, buffer: int, policy: str, max_reuse: int | None,
                    slowdown: tuple[float, ...], delay: DelayModel | None = None) -> PipelineSpec:
    """The simulated twin of a real run: fitted compute and links, the run's own settings.

    A real rank stretches each step of measured length X to X max(1, F s), F a draw of the
    run's injected delay family (`delay`, mean 1; None: none) and s its slowdown: sleeping cannot make a step
    shorter than its kernels. With no injected family (F = 1) the twin is exact: the fitted X
    times max(1, s). Otherwise it is m max(1, F s), m the fitted mean: the injected variation
    stands in for the measured jitter of X, which the profiling run puts at a few percent."""
    fitted = [lognormal(m, cv) if cv > 0.01 else Constant(m) for m, cv in zip(cal.compute_s, cal.compute_cv)]
    if delay is None or delay == Constant(1.0):
        compute, factors = tuple(fitted), tuple(max(1.0, s) for s in slowdown)
    else:
        compute, factors = tuple(AtLeast(delay.scaled(m * s), m) for m, s in zip(cal.compute_s, slowdown)), (1.0,) * len(fitted)
    return PipelineSpec(mode=mode, workers=len(compute), steps=steps, seed=seed, buffer=buffer, policy=policy, max_reuse=max_reuse,
                        compute=compute, slowdown=factors, latency=tuple(Constant(s) for s in cal.link_s))
