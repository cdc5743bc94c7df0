"""method_race: every method on the same declared cluster, network, data and seeds.

Figures: the last module's test accuracy against simulated wall-clock (bands over seeds), the
time to reach the target accuracy against the slowdown of one device, peak memory per device,
and each device's idle fraction (the bubble). Tables: final accuracy, time to target, peak
memory and idle fraction per method and slowdown, with intervals; and each method minus the
reference method of the same seed (paired: same initial weights, data order and delay draws).

Time to target is the simulated time of the first evaluation at which the last module's test
accuracy reaches the target: it is resolved to the evaluation interval (makespan / evals of the
run), which the caption states. A run that never reaches the target has no time; the table
gives how many of the seeds reached it, and the interval is over those.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from dglsim.study import labels
from dglsim.study.figures import INTERVAL_CELL, save_figure
from dglsim.study.stats import METHOD, errorbar, interval_table, paired_differences, resolution_clause
from dglsim.study.sweep_reports import wrap_caption

__all__ = ["method_race_report", "time_to_target", "REFERENCES"]

# the reference of paired comparisons: the first of these methods the results hold
REFERENCES = ("DGL async", "DGL sync", "DGL sync (plan)")
MIB = 2**20


def _with_labels(results: pd.DataFrame) -> pd.DataFrame:
    return results.assign(label=[labels.method(r) for r in results.to_dict("records")])


def _last_module_accuracy(results: pd.DataFrame) -> pd.DataFrame:
    acc = results[(results["metric"] == "test_accuracy") & (results["module"] == results["k"] - 1)]
    return acc.sort_values(["key", "time"]).assign(evaluation=lambda d: d.groupby("key").cumcount())


def time_to_target(curves: pd.DataFrame, target: float) -> pd.DataFrame:
    """Per run (key): the first evaluation time at which accuracy >= target (NaN if never),
    the run's final accuracy and its evaluation interval."""
    out = []
    for key, run in curves.groupby("key"):
        run = run.sort_values("time")
        hit = run[run["value"] >= target]
        times = run["time"].to_numpy()
        out.append({"key": key, "time_to_target": float(hit["time"].iloc[0]) if len(hit) else np.nan,
                    "final_accuracy": float(run["value"].iloc[-1]), "interval": float(np.diff(times).max()) if len(times) > 1 else float(times[0])})
    return pd.DataFrame(out)


def _per_run(results: pd.DataFrame, curves: pd.DataFrame, target: float) -> pd.DataFrame:
    config = results.drop_duplicates("key").set_index("key")[["label", "slowdown", "seed"]]
    runs = time_to_target(curves, target).join(config, on="key")
    devices = results[results["metric"].isin(["peak_memory_bytes", "idle_fraction"])]
    per_device = devices.pivot_table(index="key", columns="metric", values="value", aggfunc=["max", "mean"])
    runs["peak_memory_MiB"] = runs["key"].map(per_device[("max", "peak_memory_bytes")]) / MIB  # the most loaded device
    runs["idle_fraction"] = runs["key"].map(per_device[("mean", "idle_fraction")])  # averaged over devices
    makespan = results[results["metric"] == "makespan"].set_index("key")["value"]
    runs["makespan"] = runs["key"].map(makespan)
    return runs


def _table(runs: pd.DataFrame, out: Path, caption: str, target: float) -> list[Path]:
    by = ["label", "slowdown"]
    parts = []
    for value in ("final_accuracy", "time_to_target", "peak_memory_MiB", "idle_fraction", "makespan"):
        t = interval_table(runs, by, value).rename(columns={c: f"{value}_{c}" for c in ("mean", "low", "high", "half_width", "n")})
        parts.append(t.set_index(by))
    table = pd.concat(parts, axis=1).reset_index()
    table["seeds"] = table["label"].map(runs.groupby("label")["seed"].nunique())
    table = table.rename(columns={"time_to_target_n": "reached_target"})
    csv = out / "race.csv"
    table.to_csv(csv, index=False)

    def cell(row, value, scale=1.0, fmt="{:.1f}"):
        mean, half = row[f"{value}_mean"], row[f"{value}_half_width"]
        if pd.isna(mean):
            return "--"
        return fmt.format(mean * scale) + ("" if pd.isna(half) else " $\\pm$ " + fmt.format(half * scale))

    lines = ["\\begin{table}[t]", "\\centering",
             f"\\caption{{Method race: final test accuracy (\\%), simulated time to {100 * target:g}\\% (s; reached by n of the seeds), "
             f"peak memory of the most loaded device (MiB) and mean idle fraction; {INTERVAL_CELL}. {caption}}}",
             "\\label{tab:method-race}", "\\begin{tabular}{llcccc}", "\\toprule",
             "method & slowdown & accuracy & time to target (n) & peak MiB & idle \\\\", "\\midrule"]
    for _, row in table.sort_values(["slowdown", "label"]).iterrows():
        n = int(row["reached_target"]) if pd.notna(row["reached_target"]) else 0
        lines.append(f"{row['label']} & {row['slowdown']:g} & {cell(row, 'final_accuracy', 100)} & {cell(row, 'time_to_target', 1, '{:.3g}')} ({n}/{int(row['seeds'])}) & "
                     f"{cell(row, 'peak_memory_MiB', 1, '{:.3g}')} & {cell(row, 'idle_fraction', 1, '{:.2f}')} \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    tex = out / "race.tex"
    tex.write_text("\n".join(lines) + "\n")
    return [csv, tex]


def _paired(runs: pd.DataFrame, out: Path) -> tuple[list[Path], str]:
    present = [r for r in REFERENCES if r in set(runs["label"])]
    if not present:
        return [], "no DGL reference ran: no paired comparison"
    reference = present[0]
    frames = []
    for value in ("final_accuracy", "time_to_target"):
        for slowdown, part in runs.groupby("slowdown"):
            ref = part[part["label"] == reference]
            diff = paired_differences(part[part["label"] != reference], ref[["seed", value]], ["label"], value)
            frames.append(diff.assign(value=value, slowdown=slowdown))
    diff = pd.concat(frames, ignore_index=True)
    path = out / "paired_difference.csv"
    diff.to_csv(path, index=False)
    acc = diff[diff["value"] == "final_accuracy"]
    return [path], f"each method minus {reference} of the same seed in paired_difference.csv ({resolution_clause(acc)} in final accuracy)"


def method_race_report(results: pd.DataFrame, out: Path, caption: str, target_accuracy: float = 0.5) -> list[Path]:
    results = _with_labels(results)
    curves = _last_module_accuracy(results)
    runs = _per_run(results, curves, target_accuracy)
    order = sorted(runs["label"].unique())
    interval = runs["interval"].max()
    resolves = f"time to target resolved to the evaluation interval (at most {interval:.3g} s)"
    written = _table(runs, out, caption, target_accuracy)
    paired_paths, paired_clause = _paired(runs, out)
    written += paired_paths

    # accuracy against simulated time: the e-th evaluation of each run, at its mean time over seeds
    grid = curves.groupby(["label", "slowdown", "evaluation"]).agg(time=("time", "mean")).reset_index()
    plotted = curves.drop(columns="time").merge(grid, on=["label", "slowdown", "evaluation"])
    plotted = plotted.assign(slowdown=plotted["slowdown"].map("slowdown {:g}".format))
    g = sns.relplot(data=plotted, x="time", y="value", hue="label", hue_order=order, col="slowdown", kind="line", errorbar=errorbar(),
                    marker="o", height=3.4, aspect=1.2, facet_kws={"sharex": False})
    for ax in g.axes.flat:
        ax.axhline(target_accuracy, color="black", linestyle=":", linewidth=1)
    g.set_axis_labels("simulated wall-clock (s)", "test accuracy, last module")
    g.figure.suptitle(wrap_caption(f"{caption}; dotted: target {target_accuracy:g}; bands: {METHOD}"), fontsize=7, y=1.1)
    written += save_figure(g.figure, out / "figures" / "accuracy_vs_wallclock")

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    reached = runs.dropna(subset=["time_to_target"])
    if not reached.empty:
        sns.pointplot(data=reached, x="slowdown", y="time_to_target", hue="label", hue_order=order, errorbar=errorbar(), dodge=0.4,
                      linestyle="none", ax=axes[0])
    axes[0].set_ylabel(f"simulated time to {target_accuracy:g} accuracy (s)")
    axes[0].set_xlabel("slowdown of the slowed device")
    memory = results[results["metric"] == "peak_memory_bytes"].assign(MiB=lambda d: d["value"] / MIB, module=lambda d: d["module"].astype(int))
    sns.barplot(data=memory[memory["slowdown"] == memory["slowdown"].min()], x="module", y="MiB", hue="label", hue_order=order, errorbar=errorbar(), ax=axes[1])
    axes[1].set_xlabel("device (module)")
    axes[1].set_ylabel(f"peak memory (MiB), slowdown {memory['slowdown'].min():g}")
    sns.pointplot(data=runs, x="slowdown", y="idle_fraction", hue="label", hue_order=order, errorbar=errorbar(), dodge=0.4, linestyle="none", ax=axes[2])
    axes[2].set_ylabel("idle fraction, mean over devices (bubble)")
    axes[2].set_xlabel("slowdown of the slowed device")
    for ax in axes:
        if ax.get_legend() is not None:
            ax.legend(fontsize=6)
    fig.suptitle(wrap_caption(f"{caption}; {resolves}; runs that never reach the target are left out of the left panel (race.csv says how many reached it); "
                              f"{paired_clause}; bars: {METHOD}"), fontsize=7)
    fig.tight_layout(rect=(0, 0, 1, 0.88))
    written += save_figure(fig, out / "figures" / "time_memory_idle")
    return written
