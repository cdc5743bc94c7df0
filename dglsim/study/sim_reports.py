"""Report of the sim_vs_real study, from tidy results only: every compared quantity predicted by
the calibrated simulator against its measured value (one panel per quantity, identity line),
and the prediction errors per quantity and per run."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from dglsim.study import labels
from dglsim.study.figures import save_figure
from dglsim.study.stats import METHOD, interval_table
from dglsim.study.sweep_reports import wrap_caption

QUANTITIES = {  # metric: (label, error kind)
    "epoch_wallclock_s": ("wall-clock per epoch (s)", "relative"),
    "throughput": ("throughput (updates/s)", "relative"),
    "utilization": ("utilization", "absolute"),
    "staleness_mean": ("mean staleness", "absolute"),
    "staleness_p90": ("90th percentile staleness", "absolute"),
    "test_accuracy": ("final test accuracy", "absolute"),
}


def paired(results: pd.DataFrame) -> pd.DataFrame:
    """One row per run, quantity and module: the measured (real) and predicted (sim) values."""
    data = results[results["metric"].isin(QUANTITIES) & results["source"].isin(["real", "sim"])].copy()
    data["module"] = data["module"].fillna(-1).astype(int)  # -1: a quantity of the whole run
    data["setting"] = data.apply(labels.setting, axis=1, k=True)
    table = data.pivot_table(index=["key", "setting", "k", "pipeline", "slowdown", "quant", "seed", "metric", "module"], columns="source", values="value").reset_index()
    table["error"] = table["sim"] - table["real"]
    table["relative_error"] = table["error"] / table["real"].where(table["real"] != 0)
    return table


def error_table(pairs: pd.DataFrame) -> pd.DataFrame:
    """Per quantity, over all runs (k "all") and per K: mean absolute error (relative for times
    and rates, absolute otherwise), its largest value, and the number of comparisons."""
    out = []
    for metric, (label, kind) in QUANTITIES.items():
        for k in ["all", *sorted(pairs["k"].unique())]:
            part = pairs[(pairs["metric"] == metric) & ((pairs["k"] == k) if k != "all" else True)]
            errors = (part["relative_error"] if kind == "relative" else part["error"]).abs().dropna()
            if errors.empty:
                continue
            out.append({"quantity": metric, "k": k, "label": label, "error": kind, "mae": float(errors.mean()), "max": float(errors.max()), "count": int(errors.size)})
    return pd.DataFrame(out)


def sim_vs_real_report(results: pd.DataFrame, out: Path, caption: str) -> list[Path]:
    pairs = paired(results)
    errors = error_table(pairs)
    metrics = [m for m in QUANTITIES if (pairs["metric"] == m).any()]
    cols = 3
    fig, axes = plt.subplots(-(-len(metrics) // cols), cols, figsize=(4 * cols, 3.6 * -(-len(metrics) // cols)), squeeze=False)
    for ax, metric in zip(axes.flat, metrics):
        part = pairs[pairs["metric"] == metric]
        sns.scatterplot(data=part, x="real", y="sim", hue="setting", style="setting", ax=ax, s=40)
        # each setting's mean over seeds, measured and predicted, with their t intervals
        means = interval_table(part, ["setting", "module"], "real").merge(interval_table(part, ["setting", "module"], "sim"), on=["setting", "module"], suffixes=("_real", "_sim"))
        ax.errorbar(means["mean_real"], means["mean_sim"], xerr=means["half_width_real"].fillna(0), yerr=means["half_width_sim"].fillna(0),
                    fmt="none", ecolor="0.3", elinewidth=0.8, capsize=2)
        low, high = np.nanmin(part[["real", "sim"]].to_numpy()), np.nanmax(part[["real", "sim"]].to_numpy())
        pad = 0.05 * (high - low or 1.0)
        ax.plot([low - pad, high + pad], [low - pad, high + pad], color="0.5", lw=1, ls="--")
        row = errors[(errors["quantity"] == metric) & (errors["k"] == "all")].iloc[0]
        mae = f"{100 * row['mae']:.1f}%" if row["error"] == "relative" else f"{row['mae']:.3g}"
        ax.set_title(f"{QUANTITIES[metric][0]}\nMAE {mae}", fontsize=9)
        ax.set_xlabel("measured (real ranks)")
        ax.set_ylabel("predicted (calibrated simulator)")
        if ax is not axes.flat[0] and ax.get_legend() is not None:
            ax.get_legend().remove()
    for ax in list(axes.flat)[len(metrics):]:
        ax.set_visible(False)
    fig.suptitle(wrap_caption(f"{caption}; points: runs; bars: each setting's {METHOD}, measured (x) and predicted (y)"), fontsize=8)
    fig.tight_layout()
    written = save_figure(fig, out / "figures" / "predicted_vs_measured")
    pairs.to_csv(out / "predictions.csv", index=False)
    errors.to_csv(out / "prediction_error.csv", index=False)
    return written + [out / "predictions.csv", out / "prediction_error.csv"]
