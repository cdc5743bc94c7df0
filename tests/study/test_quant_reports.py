"""quant_sweep's verdicts from tidy rows: parity by paired interval, the most compressing
quantizer at parity, and codebook convergence from the drift of every publication."""

import math

import numpy as np
import pandas as pd

from dglsim.study.quant_reports import PARITY_POINTS, compression_at_parity, convergence_table, parity_table
from dglsim.study.stats import paired_differences


def _runs(losses: dict[str, tuple[float, float]], seeds: int = 3) -> pd.DataFrame:
    """Final accuracies per seed: float32 varies by seed; each quantizer = float32 - loss + a
    small seed-dependent wobble (so its paired interval has width). losses: setting -> (loss, compression)."""
    rng = np.random.default_rng(0)
    base = 0.5 + 0.03 * rng.standard_normal(seeds)
    rows = [{"key": f"f{s}", "pipeline": "sync", "setting": "float32", "quant": "none", "seed": s, "accuracy": base[s], "compression": 1.0,
             "bits_per_value": 32.0, "codebook_share": 0.0} for s in range(seeds)]
    for name, (loss, compression) in losses.items():
        wobble = 0.002 * rng.standard_normal(seeds)
        rows += [{"key": f"{name}{s}", "pipeline": "sync", "setting": name, "quant": "vq", "seed": s, "accuracy": base[s] - loss + wobble[s],
                  "compression": compression, "bits_per_value": 32 / compression, "codebook_share": 0.01} for s in range(seeds)]
    return pd.DataFrame(rows)


def _verdicts(runs: pd.DataFrame) -> pd.DataFrame:
    diff = paired_differences(runs[runs["quant"] != "none"], runs[runs["quant"] == "none"], ["pipeline", "setting"], "accuracy")
    return parity_table(runs, diff)


def test_the_most_compressing_quantizer_whose_interval_reaches_a_one_point_loss_is_at_parity():
    runs = _runs({"close": (0.002, 50.0), "lossy": (0.05, 400.0), "closer": (0.0, 20.0)})
    table = _verdicts(runs).set_index("setting")
    assert table.loc["close", "at_parity"] and table.loc["closer", "at_parity"]
    assert not table.loc["lossy", "at_parity"] and table.loc["lossy", "difference_high"] < -PARITY_POINTS  # the negative control
    best = compression_at_parity(_verdicts(runs))
    assert best.loc[0, "quantizer"] == "close" and best.loc[0, "compression"] == 50.0


def test_nothing_is_at_parity_without_an_interval():
    best = compression_at_parity(_verdicts(_runs({"close": (0.0, 50.0)}, seeds=1)))
    assert best.loc[0, "quantizer"] is None


def _drift_rows(curves: dict[str, list[float]]) -> pd.DataFrame:
    return pd.DataFrame([{"key": key, "link": 0, "metric": "publication_drift", "publication": i + 1, "value": v}
                         for key, curve in curves.items() for i, v in enumerate(curve)])


def test_a_codebook_converges_when_its_drift_has_fallen_tenfold():
    decaying = [1.0 / (1 + i) ** 2 for i in range(12)]  # start (mean of 3): 0.47; below 0.047 from the 5th trailing mean on
    flat = [1.0, 0.9, 1.1] * 4  # the negative control: noise around a constant never falls
    runs = pd.DataFrame([{"key": k, "pipeline": "sync", "setting": k, "seed": 0} for k in ("decaying", "flat")])
    table = convergence_table(_drift_rows({"decaying": decaying, "flat": flat}), runs).set_index("key")
    start = sum(decaying[:3]) / 3
    trailing = [sum(decaying[i - 2 : i + 1]) / 3 for i in range(2, 12)]
    first = next(i + 3 for i, v in enumerate(trailing) if i + 2 >= 3 and v <= start / 10)
    assert table.loc["decaying", "converged"] and table.loc["decaying", "converged_at"] == first
    assert math.isclose(table.loc["decaying", "fall"], start / (sum(decaying[-3:]) / 3))
    assert not table.loc["flat", "converged"] and table.loc["flat", "fall"] < 2
