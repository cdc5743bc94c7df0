"""Report of the quant_sweep study, from tidy results only: accuracy against bits (one curve per
quantizer family), simulated wall-clock and buffer memory against bits, link measurements.
Figures draw 95% t intervals over seeds; each quantizer is compared with float32 links of the
same mode and seed (paired_difference.csv)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from dglsim.study import labels
from dglsim.study.figures import save_figure
from dglsim.study.stats import METHOD, errorbar, interval_table, paired_differences, resolution_clause
from dglsim.study.sweep_reports import final_accuracy, wrap_caption

_RUN_KEYS = ["key", "pipeline", "quant", "quant_bits", "codes", "groups", "gamma", "seed"]


def run_table(results: pd.DataFrame) -> pd.DataFrame:
    """One row per run: final last-module accuracy (through the quantized links, as trained; and
    the same weights fed float activations), end-to-end bits per activation value and
    compression over all links (codebook messages included), peak buffer memory, simulated
    wall-clock, and the last probe's distortion and gradient error averaged over links."""
    runs = final_accuracy(results, _RUN_KEYS[1:])
    unquantized = final_accuracy(results, [], metric="unquantized_test_accuracy", name="unquantized_accuracy")
    runs = runs.merge(unquantized, on="key", how="left")
    links = results[results["metric"].isin(["activation_bytes", "float32_bytes", "codebook_bytes"])]
    totals = links.pivot_table(index="key", columns="metric", values="value", aggfunc="sum")
    runs = runs.merge(totals, left_on="key", right_index=True)
    runs["bits_per_value"] = 32 * runs["activation_bytes"] / runs["float32_bytes"]
    runs["compression"] = runs["float32_bytes"] / runs["activation_bytes"]
    runs["codebook_share"] = runs["codebook_bytes"] / runs["activation_bytes"]
    buffers = results[results["metric"] == "buffer_bytes"].groupby("key")["value"].sum().rename("buffer_MiB") / 2**20
    makespan = results[results["metric"] == "makespan"].groupby("key")["value"].first().rename("wallclock_s")
    runs = runs.join(buffers, on="key").join(makespan, on="key")
    probes = results[results["metric"].isin(["relative_distortion", "relative_gradient_error"])]
    if not probes.empty:
        last = probes[probes["time"] == probes.groupby("key")["time"].transform("max")]
        runs = runs.join(last.pivot_table(index="key", columns="metric", values="value", aggfunc="mean"), on="key")
    runs["quantizer"] = runs.apply(labels.quantizer, axis=1, size=False)
    return runs.sort_values(["pipeline", "quantizer", "bits_per_value"])


def parity_table(runs: pd.DataFrame, points: float = 0.01) -> pd.DataFrame:
    """Per mode: the most compressing quantizer whose last-module accuracy (mean over seeds) is
    within `points` of float32's in the same mode, beside float32's accuracy."""
    mean = runs.assign(setting=runs.apply(labels.quantizer, axis=1)).groupby(["pipeline", "setting", "quant"], as_index=False)[["accuracy", "compression", "bits_per_value"]].mean()
    rows = []
    for pipeline, group in mean.groupby("pipeline"):
        reference = group[group["quant"] == "none"]
        if reference.empty:
            continue
        base = float(reference["accuracy"].iloc[0])
        close = group[(group["quant"] != "none") & (group["accuracy"] >= base - points)]
        best = close.sort_values("compression").iloc[-1] if not close.empty else None
        rows.append({"pipeline": pipeline, "float32_accuracy": base,
                     "quantizer": None if best is None else best["setting"],
                     "accuracy": None if best is None else best["accuracy"], "compression": None if best is None else best["compression"],
                     "bits_per_value": None if best is None else best["bits_per_value"]})
    return pd.DataFrame(rows)


def quant_sweep_report(results: pd.DataFrame, out: Path, caption: str) -> list[Path]:
    runs = run_table(results)
    runs.to_csv(out / "runs.csv", index=False)
    parity_table(runs).to_csv(out / "compression_at_parity.csv", index=False)
    runs = runs.assign(setting=runs.apply(labels.quantizer, axis=1))
    interval_table(runs, ["pipeline", "setting"], "accuracy").to_csv(out / "final_accuracy.csv", index=False)
    diffs = [paired_differences(group[group["quant"] != "none"], group[group["quant"] == "none"], ["pipeline", "setting"], "accuracy")
             for _, group in runs.groupby("pipeline") if (group["quant"] == "none").any()]
    diff = pd.concat(diffs, ignore_index=True) if diffs else interval_table(runs.iloc[:0], ["pipeline", "setting"], "accuracy")
    diff.to_csv(out / "paired_difference.csv", index=False)
    caption = f"{caption}; bars: {METHOD}; against float32 links: {resolution_clause(diff)}"
    written = [out / "runs.csv", out / "compression_at_parity.csv", out / "final_accuracy.csv", out / "paired_difference.csv"]
    order = sorted(runs["quantizer"].unique(), key=lambda m: (not m.startswith("VQ"), m))

    # The paper figure: accuracy against bits per activation value, one curve per method.
    pipelines = sorted(runs["pipeline"].unique())
    fig, axes = plt.subplots(1, len(pipelines), figsize=(5.2 * len(pipelines), 4), squeeze=False, sharey=True)
    for ax, pipeline in zip(axes[0], pipelines):
        data = runs[runs["pipeline"] == pipeline]
        sns.lineplot(data=data, x="bits_per_value", y="accuracy", hue="quantizer", hue_order=order, marker="o", errorbar=errorbar(), err_style="bars", ax=ax)
        for _, r in data[data["quantizer"] == "VQ"].drop_duplicates("codes").iterrows():  # the curve over the codes; variants are at 256 codes
            ax.annotate(f"{int(r['codes'])} codes", (r["bits_per_value"], r["accuracy"]), fontsize=6, xytext=(3, 3), textcoords="offset points")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("bits per activation value on the links (codebooks included)")
        ax.set_ylabel("final test accuracy, last module")
        ax.set_title(f"{pipeline} DGL", fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle(wrap_caption(caption), fontsize=7)
    written += save_figure(fig, out / "figures" / "accuracy_vs_bits")

    fig, axes = plt.subplots(1, 2, figsize=(10.4, 3.8))
    for ax, (column, label) in zip(axes, [("wallclock_s", "simulated wall-clock (s)"), ("buffer_MiB", "peak buffer memory, all buffers (MiB)")]):
        sns.lineplot(data=runs, x="bits_per_value", y=column, hue="quantizer", hue_order=order, style="pipeline", marker="o", errorbar=errorbar(), err_style="bars", ax=ax)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("bits per activation value")
        ax.set_ylabel(label)
        ax.legend(fontsize=6)
    fig.suptitle(wrap_caption(caption), fontsize=7)
    written += save_figure(fig, out / "figures" / "wallclock_and_memory_vs_bits")

    probes = results[results["metric"].isin(["relative_distortion", "relative_gradient_error", "perplexity"])]
    if not probes.empty:
        probes = probes.merge(runs[["key", "quantizer"]], on="key")
        probes = probes[probes["time"] == probes.groupby("key")["time"].transform("max")]
        grid = sns.relplot(data=probes[probes["quant"] == "vq"], x="codes", y="value", hue="quantizer", style="link", col="metric", kind="line",
                           marker="o", errorbar=errorbar(), height=3.2, aspect=1.1, facet_kws={"sharey": False})
        for ax in grid.axes.flat:
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
        grid.set_axis_labels("codes K", "")
        grid.figure.suptitle(wrap_caption(caption + "; last probe of each run"), fontsize=7, y=1.08)
        written += save_figure(grid.figure, out / "figures" / "link_measurements_vs_codes")
    return written
