"""Side-by-side timing: two workloads alternate in one process, round after round, and the
figure reported is the median over rounds of the per-round ratio. Drift in machine speed hits
both sides of a round alike, so the ratio is stable where absolute times are not."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Callable


def paired_ratio(numerator: Callable[[], None], denominator: Callable[[], None], *, rounds: int, warmup: int = 2) -> dict:
    """Median and quartiles of time(numerator) / time(denominator) over `rounds` alternations."""
    for _ in range(warmup):
        numerator()
        denominator()
    ratios, num_times, den_times = [], [], []
    for i in range(rounds):
        # Alternate which side goes first so neither always runs on a warmer cache.
        order = (numerator, denominator) if i % 2 == 0 else (denominator, numerator)
        times = {}
        for fn in order:
            start = time.perf_counter()
            fn()
            times[fn] = time.perf_counter() - start
        num_times.append(times[numerator])
        den_times.append(times[denominator])
        ratios.append(times[numerator] / times[denominator])
    q1, median, q3 = statistics.quantiles(ratios, n=4)
    return {"ratio_median": median, "ratio_q1": q1, "ratio_q3": q3, "rounds": rounds,
            "numerator_s_median": statistics.median(num_times), "denominator_s_median": statistics.median(den_times)}


def finish_report(report: dict, path: Path | None) -> None:
    """Print the run's allocator and threads (they move the absolute times) and save the report as JSON."""
    prov = report.get("provenance", {})
    if prov:
        print(f"allocator: {prov['allocator']}, threads: {prov['torch_threads']}")
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2))
