"""A real run from a program: write the config, launch the K ranks, read back what they wrote."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from dglsim.ranks.launch import launch
from dglsim.recipe.config import RunConfig
from dglsim.sim.trace import Trace

__all__ = ["RealRun", "run_real"]


@dataclass(frozen=True)
class RealRun:
    results: dict  # results.json of the last rank: rows, per-rank updates, provenance
    trace: Trace  # the merged trace of all ranks
    out: Path


def run_real(cfg: RunConfig, out: Path, *, in_flight: int = 2, timeout_s: float = 60.0, threads: int = 1) -> RealRun:
    """Run `cfg` on K local ranks (one thread each by default); raises RuntimeError when a rank fails."""
    out.mkdir(parents=True, exist_ok=True)
    config = out / "config.json"
    config.write_text(json.dumps({k: v for k, v in cfg.as_dict().items() if k != "method"}))
    result = launch(cfg.k, [str(config), f"--out={out}", f"--in-flight={in_flight}", f"--timeout={timeout_s}", f"--threads={threads}", "--no-progress"],
                    out=out, threads=threads)
    if not result.ok:
        raise RuntimeError(f"the real run in {out} failed: {result.summary()}")
    return RealRun(json.loads((out / "results.json").read_text()), Trace.from_csv(out / "trace.csv"), out)
