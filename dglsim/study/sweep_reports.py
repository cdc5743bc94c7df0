"""Reports of the asynchronous studies (delay_sweep, buffer_sweep), from tidy results only."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from matplotlib.ticker import NullFormatter

from dglsim.study.figures import latex_table, save_figure


def wrap_caption(caption: str, width: int = 150) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(caption, width))


def final_accuracy(results: pd.DataFrame, by: list[str], *, metric: str = "test_accuracy", name: str = "accuracy") -> pd.DataFrame:
    """Last-module `metric` at the end of each run (the last evaluation), as column `name`."""
    acc = results[(results["metric"] == metric) & (results["module"] == results["k"] - 1)]
    last = acc[acc["time"] == acc.groupby("key")["time"].transform("max")]
    return last[["key", *by, "value"]].rename(columns={"value": name})


def _reference_line(ax: plt.Axes, final: pd.DataFrame) -> None:
    sync = final[final["pipeline"] == "sync"]
    if not sync.empty:
        mean = sync["accuracy"].mean()
        ax.axhline(mean, color="black", linestyle="--", linewidth=1, label=f"sync DGL ({mean:.3f})")


def _module_table(results: pd.DataFrame, out: Path) -> Path:
    """Per module and buffer size: the base compute time per update (profiled on this device
    unless the config gave one) and the memory of the module's input buffer when full."""
    parts = results[results["metric"].isin(["compute_time_s", "buffer_bytes"]) & (results["pipeline"] != "sync")]
    table = parts.pivot_table(index=["buffer", "module"], columns="metric", values="value", aggfunc="mean").reset_index()
    table["buffer_MiB"] = table["buffer_bytes"] / 2**20
    path = out / "modules.csv"
    table.to_csv(path, index=False)
    return path


def delay_sweep_report(results: pd.DataFrame, out: Path, caption: str) -> list[Path]:
    written: list[Path] = [_module_table(results, out)]
    final = final_accuracy(results, ["pipeline", "slowdown", "slowed", "buffer", "seed"])
    asyn = final[final["pipeline"] != "sync"]

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    several_positions = asyn["slowed"].nunique() > 1
    sns.lineplot(data=asyn, x="slowdown", y="accuracy", hue="buffer", style="slowed" if several_positions else None, marker="o",
                 errorbar=("ci", 95), n_boot=1000, seed=0, palette="viridis", ax=ax)
    _reference_line(ax, final)
    ax.set_xscale("log")
    slowdowns = sorted(asyn["slowdown"].unique())
    labelled = [s for i, s in enumerate(slowdowns) if i == 0 or s / slowdowns[i - 1] > 1.15 or s == slowdowns[-1]]  # no overlapping labels
    ax.set_xticks(labelled, labels=[f"{s:g}" for s in labelled])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("slowdown of the slowed module")
    ax.set_ylabel("final test accuracy, last module")
    ax.legend(fontsize=7, title="buffer M", title_fontsize=7)
    fig.suptitle(wrap_caption(caption), fontsize=7)
    written += save_figure(fig, out / "figures" / "accuracy_vs_slowdown")

    curves = results[(results["metric"] == "test_accuracy") & (results["module"] == results["k"] - 1)]
    curves = curves[curves["pipeline"] != "sync"].assign(slowdown=lambda d: d["slowdown"].map("{:g}".format))
    order = [f"{s:g}" for s in slowdowns]
    grid = sns.relplot(data=curves, x="time", y="value", hue="slowdown", hue_order=order, col="buffer", kind="line", palette="rocket_r",
                       errorbar=None, marker="o", height=3.2, aspect=1.1, facet_kws={"sharex": False})
    grid.set_axis_labels("simulated wall-clock (s)", "test accuracy, last module")
    grid.figure.suptitle(wrap_caption(caption), fontsize=7, y=1.08)
    written += save_figure(grid.figure, out / "figures" / "accuracy_vs_wallclock")

    # The slowed module consumes the output of a faster producer: that is where staleness builds
    # up (the module after it mostly reuses items whose producer has not updated since: staleness 0).
    counts = results[(results["metric"] == "staleness_count") & (results["module"] == results["slowed"]) & (results["pipeline"] != "sync")]
    if not counts.empty:
        counts = counts.assign(slowdown=lambda d: d["slowdown"].map("{:g}".format))
        grid = sns.relplot(data=counts, x="staleness", y="value", hue="slowdown", hue_order=order, col="buffer", kind="line",
                           palette="rocket_r", estimator="mean", errorbar=None, marker="o", height=3.2, aspect=1.1,
                           facet_kws={"sharey": False, "sharex": False})
        grid.set_axis_labels("staleness (producer updates since production)", "updates of the slowed module")
        grid.figure.suptitle(wrap_caption(caption + "; staleness of the items the slowed module consumes"), fontsize=7, y=1.08)
        written += save_figure(grid.figure, out / "figures" / "staleness")

    table = asyn.groupby(["slowdown", "buffer"])["accuracy"].agg(["mean", "std", "count"]).reset_index()
    table.to_csv(out / "final_accuracy.csv", index=False)
    tex = out / "final_accuracy.tex"
    tex.write_text(latex_table(table, row="slowdown", col="buffer", caption="Final last-module test accuracy (\\%) of asynchronous DGL. " + caption, label="tab:delay-sweep"))
    return written + [out / "final_accuracy.csv", tex]


def buffer_sweep_report(results: pd.DataFrame, out: Path, caption: str) -> list[Path]:
    written: list[Path] = [_module_table(results, out)]
    final = final_accuracy(results, ["pipeline", "buffer", "policy", "seed"])
    asyn = final[final["pipeline"] != "sync"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    sns.lineplot(data=asyn, x="buffer", y="accuracy", hue="policy", marker="o", errorbar=("ci", 95), n_boot=1000, seed=0, ax=axes[0])
    _reference_line(axes[0], final)
    axes[0].set_xlabel("buffer size M (mini-batches)")
    axes[0].set_ylabel("final test accuracy, last module")
    axes[0].legend(fontsize=7, title="policy", title_fontsize=7)
    stale = results[(results["metric"] == "staleness_mean") & (results["pipeline"] != "sync") & (results["module"] > 0)]
    stale = stale.assign(module=stale["module"].astype(int))
    sns.lineplot(data=stale, x="buffer", y="value", hue="policy", style="module", marker="o", errorbar=None, ax=axes[1])
    buffers = sorted(asyn["buffer"].unique())
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xticks(buffers, labels=[str(b) for b in buffers])
        ax.xaxis.set_minor_formatter(NullFormatter())
    axes[1].set_xlabel("buffer size M (mini-batches)")
    axes[1].set_ylabel("mean staleness of consumed items")
    axes[1].legend(fontsize=6, ncol=2)
    fig.suptitle(wrap_caption(caption), fontsize=7)
    written += save_figure(fig, out / "figures" / "accuracy_and_staleness_vs_buffer")
    table = asyn.groupby(["policy", "buffer"])["accuracy"].agg(["mean", "std", "count"]).reset_index()
    table.to_csv(out / "final_accuracy.csv", index=False)
    tex = out / "final_accuracy.tex"
    tex.write_text(latex_table(table, row="policy", col="buffer", caption="Final last-module test accuracy (\\%) of asynchronous DGL by buffer size and policy. " + caption, label="tab:buffer-sweep"))
    return written + [out / "final_accuracy.csv", tex]
