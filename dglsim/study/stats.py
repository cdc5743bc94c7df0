"""Intervals over seeds and paired comparisons: computed once here, named in every caption.

Method: Student's t interval, mean ± t(n-1, 0.975) s / sqrt(n), and for a comparison the t
interval of the per-seed differences (the paired t interval, as `scipy.stats.ttest_rel`).
Why t and not the bootstrap: a default profile has 3-5 seeds, and with n = 3 the percentile
bootstrap has 10 distinct resamples and its "95%" interval is the range of at most three
values, which covers the mean far less than 95% of the time; the t interval is exact when the
seed-to-seed variation is normal and robust to mild skew. A final accuracy averages thousands
of test decisions over a run of many updates, so its seed-to-seed law is close to normal.

Pairing: settings compared with a reference share the seed's initial weights, data order,
augmentation and delay streams (common random numbers), so the difference of a pair cancels
what the seed alone decides and its interval is narrower than that of two independent means.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["LEVEL", "METHOD", "t_interval", "errorbar", "interval_table", "paired", "paired_differences", "resolution_clause"]

LEVEL = 0.95
METHOD = "95% Student-t interval over seeds"


def t_interval(values, level: float = LEVEL) -> tuple[float, float]:
    """(low, high) of the t interval of the mean of `values`; (nan, nan) below two values."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) < 2:
        return math.nan, math.nan
    mean, sem = float(x.mean()), float(x.std(ddof=1) / math.sqrt(len(x)))
    half = float(stats.t.ppf(0.5 + level / 2, len(x) - 1)) * sem
    return mean - half, mean + half


def errorbar(level: float = LEVEL) -> Callable[[np.ndarray], tuple[float, float]]:
    """The t interval as a seaborn `errorbar=` callable: figures draw the same interval as the tables."""
    return lambda values: t_interval(values, level)


def _summary(values: pd.Series) -> pd.Series:
    low, high = t_interval(values)
    return pd.Series({"mean": values.mean(), "low": low, "high": high, "half_width": (high - low) / 2, "n": int(values.notna().sum())})


def interval_table(data: pd.DataFrame, by: list[str], value: str) -> pd.DataFrame:
    """Per group of `by`: mean, t-interval low and high, half-width and n of `value`."""
    if data.empty:
        return pd.DataFrame(columns=[*by, "mean", "low", "high", "half_width", "n"])
    return data.groupby(by)[value].apply(_summary).unstack().reset_index().astype({"n": int})


def paired(data: pd.DataFrame, reference: pd.DataFrame, value: str, *, pair: str = "seed") -> pd.DataFrame:
    """`data` with a column "difference" = data[value] - the reference's value of the same
    `pair` (rows without a reference row are dropped). `reference` holds one row per seed."""
    if reference[pair].duplicated().any():
        raise ValueError(f"the reference must hold one row per {pair}, got duplicates: {sorted(set(reference[pair][reference[pair].duplicated()]))}")
    ref = reference[[pair, value]].rename(columns={value: "reference"})
    joined = data.merge(ref, on=pair, how="inner")
    return joined.assign(difference=joined[value] - joined["reference"])


def paired_differences(data: pd.DataFrame, reference: pd.DataFrame, by: list[str], value: str, *, pair: str = "seed") -> pd.DataFrame:
    """Per group of `by`: the mean over `pair` of data[value] - reference[value] (the reference's
    row of the same seed), its t interval, half-width and n (the pairs found)."""
    return interval_table(paired(data, reference, value, pair=pair), by, "difference")


def resolution_clause(paired: pd.DataFrame, *, scale: float = 100.0, unit: str = "points") -> str:
    """What the design resolves: the range of the paired intervals' half-widths, and n."""
    half = paired["half_width"].dropna() * scale
    if half.empty:
        return "one seed: no interval, differences are not resolved"
    n = sorted(set(paired["n"]))
    ns = f"n = {n[0]}" if len(n) == 1 else f"n = {n[0]}-{n[-1]}"
    return (f"paired {METHOD} ({ns} seeds): half-widths {half.min():.2g}-{half.max():.2g} {unit}, "
            "so smaller differences from the reference are not resolved")
