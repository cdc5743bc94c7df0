"""Reports of the asynchronous studies (delay_sweep, buffer_sweep), from tidy results only.

Every figure draws 95% t intervals over seeds (dglsim.study.stats); every table gives mean,
interval and n; asynchronous settings are compared with synchronous DGL of the same seed
(common random numbers), and the captions state the smallest difference the design resolves.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from matplotlib.ticker import NullFormatter

from dglsim.study.figures import INTERVAL_CELL, latex_table, save_figure
from dglsim.study.stats import METHOD, errorbar, interval_table, paired, paired_differences, resolution_clause, t_interval


def wrap_caption(caption: str, width: int = 150) -> str:
    return "\n".join(textwrap.wrap(caption, width))


def final_accuracy(results: pd.DataFrame, by: list[str], *, metric: str = "test_accuracy", name: str = "accuracy") -> pd.DataFrame:
    """Last-module `metric` at the end of each run (the last evaluation), as column `name`."""
    acc = results[(results["metric"] == metric) & (results["module"] == results["k"] - 1)]
    last = acc[acc["time"] == acc.groupby("key")["time"].transform("max")]
    return last[["key", *by, "value"]].rename(columns={"value": name})


def _reference_band(ax: plt.Axes, final: pd.DataFrame) -> None:
    """Synchronous DGL's mean (dashed) and its 95% t interval (shaded) over seeds."""
    sync = final[final["pipeline"] == "sync"]["accuracy"]
    if sync.empty:
        return
    ax.axhline(sync.mean(), color="black", linestyle="--", linewidth=1, label=f"sync DGL ({sync.mean():.3f}, n={len(sync)})")
    low, high = t_interval(sync)
    if pd.notna(low):
        ax.axhspan(low, high, color="black", alpha=0.08, linewidth=0)


def _module_table(results: pd.DataFrame, out: Path) -> Path:
    """Per module and buffer size: the base compute time per update on the declared cluster and
    the memory of the module's input buffer when full."""
    parts = results[results["metric"].isin(["compute_time_s", "buffer_bytes"]) & (results["pipeline"] != "sync")]
    table = parts.pivot_table(index=["buffer", "module"], columns="metric", values="value", aggfunc="mean").reset_index()
    table["buffer_MiB"] = table["buffer_bytes"] / 2**20
    path = out / "modules.csv"
    table.to_csv(path, index=False)
    return path


def _dodged(data: pd.DataFrame, x: str, hue: str, *, step: float = 0.025) -> pd.DataFrame:
    """`data` with column `x + "_plotted"`: x moved by a small factor per `hue` value, so the
    interval bars of settings at the same x do not hide each other (a log axis: a factor is a
    constant shift). Ticks stay at the true values."""
    levels = sorted(data[hue].unique())
    offset = {v: (1 + step) ** (i - (len(levels) - 1) / 2) for i, v in enumerate(levels)}
    return data.assign(**{x + "_plotted": data[x] * data[hue].map(offset)})


def _log_axis(ax: plt.Axes, values) -> None:
    values = sorted(values)
    labelled = [s for i, s in enumerate(values) if i == 0 or s / values[i - 1] > 1.15 or s == values[-1]]  # no overlapping labels
    ax.set_xscale("log")
    ax.set_xticks(labelled, labels=[f"{s:g}" for s in labelled])
    ax.xaxis.set_minor_formatter(NullFormatter())


def _tables(asyn: pd.DataFrame, reference: pd.DataFrame, by: list[str], out: Path, *, row: str, col: str, what: str, caption: str, label: str) -> tuple[list[Path], pd.DataFrame]:
    """final_accuracy.{csv,tex} (mean, interval, n per setting) and paired_difference.{csv,tex}
    (setting minus synchronous DGL of the same seed); returns the paths and the paired table."""
    table = interval_table(asyn, by, "accuracy")
    diff = paired_differences(asyn, reference, by, "accuracy")
    table.to_csv(out / "final_accuracy.csv", index=False)
    diff.to_csv(out / "paired_difference.csv", index=False)
    tex, diff_tex = out / "final_accuracy.tex", out / "paired_difference.tex"
    tex.write_text(latex_table(table, row=row, col=col, caption=f"Final last-module test accuracy (\\%) of {what}, {INTERVAL_CELL}. " + caption, label=label))
    diff_tex.write_text(latex_table(diff, row=row, col=col, signed=True, label=label + "-paired",
                                    caption=f"{what[0].upper() + what[1:]} minus synchronous DGL of the same seed, final last-module test accuracy (points), {INTERVAL_CELL}; "
                                            f"{resolution_clause(diff)}. " + caption))
    return [out / "final_accuracy.csv", tex, out / "paired_difference.csv", diff_tex], diff


def delay_sweep_report(results: pd.DataFrame, out: Path, caption: str) -> list[Path]:
    written: list[Path] = [_module_table(results, out)]
    final = final_accuracy(results, ["pipeline", "slowdown", "slowed", "buffer", "seed"])
    asyn, reference = final[final["pipeline"] != "sync"], final[final["pipeline"] == "sync"]
    by = ["slowed", "slowdown", "buffer"]
    tables, diff = _tables(asyn, reference, by, out, row="slowdown", col="buffer", what="asynchronous DGL", caption=caption, label="tab:delay-sweep")
    resolves = resolution_clause(diff)
    several_positions = asyn["slowed"].nunique() > 1
    slowdowns = sorted(asyn["slowdown"].unique())

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
    sns.lineplot(data=_dodged(asyn, "slowdown", "buffer"), x="slowdown_plotted", y="accuracy", hue="buffer", style="slowed" if several_positions else None,
                 marker="o", errorbar=errorbar(), err_style="bars", palette="viridis", ax=axes[0])
    _reference_band(axes[0], final)
    axes[0].set_ylabel("final test accuracy, last module")
    pairs = paired(asyn, reference, "accuracy")
    sns.lineplot(data=_dodged(pairs, "slowdown", "buffer"), x="slowdown_plotted", y="difference", hue="buffer", style="slowed" if several_positions else None,
                 marker="o", errorbar=errorbar(), err_style="bars", palette="viridis", ax=axes[1])
    axes[1].axhline(0.0, color="black", linestyle="--", linewidth=1)
    axes[1].set_ylabel("async minus sync DGL, same seed (accuracy)")
    for ax in axes:
        _log_axis(ax, slowdowns)
        ax.set_xlabel("slowdown of the slowed module")
        ax.legend(fontsize=7, title="buffer M", title_fontsize=7)
    fig.suptitle(wrap_caption(f"{caption}; bars and band: {METHOD}; {resolves}"), fontsize=7)
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    written += save_figure(fig, out / "figures" / "accuracy_vs_slowdown")

    curves = results[(results["metric"] == "test_accuracy") & (results["module"] == results["k"] - 1)]
    curves = curves[curves["pipeline"] != "sync"].assign(slowdown=lambda d: d["slowdown"].map("{:g}".format))
    order = [f"{s:g}" for s in slowdowns]
    grid = sns.relplot(data=curves, x="time", y="value", hue="slowdown", hue_order=order, col="buffer", kind="line", palette="rocket_r",
                       errorbar=errorbar(), marker="o", height=3.2, aspect=1.1, facet_kws={"sharex": False})
    grid.set_axis_labels("simulated wall-clock (s)", "test accuracy, last module")
    grid.figure.suptitle(wrap_caption(f"{caption}; bands: {METHOD}"), fontsize=7, y=1.08)
    written += save_figure(grid.figure, out / "figures" / "accuracy_vs_wallclock")

    # The slowed module consumes the output of a faster producer: that is where staleness builds
    # up (the module after it mostly reuses items whose producer has not updated since: staleness 0).
    counts = results[(results["metric"] == "staleness_count") & (results["module"] == results["slowed"]) & (results["pipeline"] != "sync")]
    if not counts.empty:
        counts = counts.assign(slowdown=lambda d: d["slowdown"].map("{:g}".format))
        grid = sns.relplot(data=counts, x="staleness", y="value", hue="slowdown", hue_order=order, col="buffer", kind="line",
                           palette="rocket_r", estimator="mean", errorbar=errorbar(), marker="o", height=3.2, aspect=1.1,
                           facet_kws={"sharey": False, "sharex": False})
        grid.set_axis_labels("staleness (producer updates since production)", "updates of the slowed module")
        grid.figure.suptitle(wrap_caption(caption + f"; staleness of the items the slowed module consumes; bands: {METHOD}"), fontsize=7, y=1.08)
        written += save_figure(grid.figure, out / "figures" / "staleness")
    return written + tables


def buffer_sweep_report(results: pd.DataFrame, out: Path, caption: str) -> list[Path]:
    written: list[Path] = [_module_table(results, out)]
    final = final_accuracy(results, ["pipeline", "buffer", "policy", "seed"])
    asyn, reference = final[final["pipeline"] != "sync"], final[final["pipeline"] == "sync"]
    tables, diff = _tables(asyn, reference, ["policy", "buffer"], out, row="policy", col="buffer", what="asynchronous DGL by buffer size and policy",
                           caption=caption, label="tab:buffer-sweep")
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
    sns.lineplot(data=_dodged(asyn, "buffer", "policy"), x="buffer_plotted", y="accuracy", hue="policy", marker="o", errorbar=errorbar(), err_style="bars", ax=axes[0])
    _reference_band(axes[0], final)
    axes[0].set_ylabel("final test accuracy, last module")
    sns.lineplot(data=_dodged(paired(asyn, reference, "accuracy"), "buffer", "policy"), x="buffer_plotted", y="difference", hue="policy", marker="o",
                 errorbar=errorbar(), err_style="bars", ax=axes[1])
    axes[1].axhline(0.0, color="black", linestyle="--", linewidth=1)
    axes[1].set_ylabel("async minus sync DGL, same seed (accuracy)")
    stale = results[(results["metric"] == "staleness_mean") & (results["pipeline"] != "sync") & (results["module"] > 0)]
    stale = stale.assign(module=stale["module"].astype(int))
    sns.lineplot(data=stale, x="buffer", y="value", hue="policy", style="module", marker="o", errorbar=errorbar(), err_style="bars", ax=axes[2])
    axes[2].set_ylabel("mean staleness of consumed items")
    for ax in axes:
        _log_axis(ax, asyn["buffer"].unique())
        ax.set_xlabel("buffer size M (mini-batches)")
        ax.legend(fontsize=6, ncol=2)
    fig.suptitle(wrap_caption(f"{caption}; bars and band: {METHOD}; {resolution_clause(diff)}"), fontsize=7)
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    written += save_figure(fig, out / "figures" / "accuracy_and_staleness_vs_buffer")
    return written + tables


def _authors_setting(row) -> str:
    if row["pipeline"] == "sync":
        return "sync DGL"
    return f"M={int(row['buffer'])}, noise={1 - 1 / row['slowdown']:.2g}"  # their noise n: slowdown 1 / (1 - n)


def authors_buffer_report(results: pd.DataFrame, out: Path, caption: str) -> list[Path]:
    """Final last-module accuracy and ensemble of the authors' experiment per (M, noise), paired
    with synchronous DGL of the same seed; staleness and reuse of every consumer."""
    written: list[Path] = []
    finals = []
    for metric, name in (("test_accuracy", "last module"), ("ensemble_accuracy", "ensemble (2^i-weighted logits)")):
        final = final_accuracy(results, ["pipeline", "buffer", "slowdown", "seed"], metric=metric)
        finals.append(final.assign(setting=final.apply(_authors_setting, axis=1), measure=name))
    final = pd.concat(finals, ignore_index=True)
    order = ["sync DGL"] + sorted(set(final["setting"]) - {"sync DGL"}, key=lambda s: (-int(s.split(",")[0][2:]), s))
    table = interval_table(final, ["measure", "setting"], "accuracy")
    pairs = pd.concat([paired(part[part["pipeline"] != "sync"], part[part["pipeline"] == "sync"], "accuracy") for _, part in final.groupby("measure")])
    diff = interval_table(pairs, ["measure", "setting"], "difference")
    table.to_csv(out / "final_accuracy.csv", index=False)
    diff.to_csv(out / "paired_difference.csv", index=False)
    use = results[results["metric"].isin(["staleness_mean", "reuse_mean"]) & (results["module"] > 0)]
    use = use.assign(setting=use.apply(_authors_setting, axis=1))
    interval_table(use, ["setting", "module", "metric"], "value").to_csv(out / "staleness_and_reuse.csv", index=False)
    written += [out / "final_accuracy.csv", out / "paired_difference.csv", out / "staleness_and_reuse.csv"]

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    sns.pointplot(data=final, x="setting", y="accuracy", hue="measure", order=order, errorbar=errorbar(), dodge=0.3, linestyle="none", ax=axes[0])
    axes[0].set_ylabel("final test accuracy")
    sns.pointplot(data=pairs, x="setting", y="difference", hue="measure", order=order[1:], errorbar=errorbar(), dodge=0.3, linestyle="none", ax=axes[1])
    axes[1].axhline(0.0, color="black", linestyle="--", linewidth=1)
    axes[1].set_ylabel("minus sync DGL, same seed")
    for ax in axes:
        ax.set_xlabel("")
        ax.tick_params(axis="x", labelsize=7)
        ax.legend(fontsize=7)
    resolves = resolution_clause(diff[diff["measure"] == "last module"])
    fig.suptitle(wrap_caption(f"{caption}; bars: {METHOD}; {resolves}"), fontsize=7)
    written += save_figure(fig, out / "figures" / "accuracy_by_setting")
    return written
