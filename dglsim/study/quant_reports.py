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

_RUN_KEYS = ["key", "pipeline", "quant", "quant_bits", "codes", "groups", "gamma", "stages", "codebook_init", "code_format", "codebook_update", "seed"]
PARITY_POINTS = 0.01  # "at parity": a paired interval that reaches a loss of 1 point or less
CONVERGED_FALL = 10.0  # a codebook has converged when its drift per publication has fallen this much from its start
_WINDOW = 3  # publications averaged at the start and at the end of a drift curve


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


def parity_table(runs: pd.DataFrame, diff: pd.DataFrame, points: float = PARITY_POINTS) -> pd.DataFrame:
    """Per mode and quantizer: mean compression over seeds (codebook messages included), the
    paired difference of final accuracy from float32 links (same mode, same seed) with its t
    interval, and the verdicts: `at_parity` when the interval's upper end is -points or better
    (the interval includes a loss of at most `points`), `mean_within` when the mean difference
    is. Without an interval (one seed) nothing is at parity."""
    quantized = runs[runs["quant"] != "none"]
    comp = quantized.groupby(["pipeline", "setting"], as_index=False)[["compression", "bits_per_value", "codebook_share"]].mean()
    diff = diff.rename(columns={"mean": "difference", "low": "difference_low", "high": "difference_high", "n": "seeds"}).drop(columns=["half_width"])
    table = comp.merge(diff, on=["pipeline", "setting"], how="left")
    table["at_parity"] = table["difference_high"] >= -points
    table["mean_within"] = table["difference"] >= -points
    return table.sort_values(["pipeline", "compression"])


def compression_at_parity(parity: pd.DataFrame) -> pd.DataFrame:
    """Per mode: the most compressing quantizer at parity (by its paired interval), or none."""
    rows = []
    for pipeline, group in parity.groupby("pipeline"):
        best = group[group["at_parity"]].sort_values("compression").tail(1)
        rows.append({"pipeline": pipeline} | ({"quantizer": None} if best.empty else best.iloc[0].drop("pipeline").rename({"setting": "quantizer"}).to_dict()))
    return pd.DataFrame(rows)


def convergence_table(results: pd.DataFrame, runs: pd.DataFrame, fall: float = CONVERGED_FALL) -> pd.DataFrame:
    """Per VQ run and link: the codebook drift per publication (relative squared change, see
    dglsim.quant.codec) averaged over the first and the last `_WINDOW` publications, their
    ratio, the first publication whose trailing mean has fallen `fall`x from the start, and
    whether the run got there (`converged`)."""
    drift = results[results["metric"] == "publication_drift"]
    rows = []
    for (key, link), group in drift.groupby(["key", "link"]):
        curve = group.sort_values("publication")["value"].to_numpy()
        start, end = curve[:_WINDOW].mean(), curve[-_WINDOW:].mean()
        trailing = pd.Series(curve).rolling(_WINDOW).mean().to_numpy()
        reached = [i + 1 for i, v in enumerate(trailing) if i >= _WINDOW and v <= start / fall]
        rows.append({"key": key, "link": int(link), "publications": len(curve), "drift_start": start, "drift_end": end,
                     "fall": start / end if end > 0 else float("inf"), "converged_at": reached[0] if reached else None, "converged": bool(reached)})
    table = pd.DataFrame(rows, columns=["key", "link", "publications", "drift_start", "drift_end", "fall", "converged_at", "converged"])
    return table.merge(runs[["key", "pipeline", "setting", "seed"]], on="key")


def _caption(fig, caption: str) -> None:
    """The caption above the panels, raised by its number of lines so it never covers them."""
    text = wrap_caption(caption)
    fig.suptitle(text, fontsize=7, y=1.0 + 0.035 * (text.count("\n") + 1))


def quant_sweep_report(results: pd.DataFrame, out: Path, caption: str) -> list[Path]:
    runs = run_table(results)
    runs.to_csv(out / "runs.csv", index=False)
    runs = runs.assign(setting=runs.apply(labels.quantizer, axis=1))
    interval_table(runs, ["pipeline", "setting"], "accuracy").to_csv(out / "final_accuracy.csv", index=False)
    diffs = [paired_differences(group[group["quant"] != "none"], group[group["quant"] == "none"], ["pipeline", "setting"], "accuracy")
             for _, group in runs.groupby("pipeline") if (group["quant"] == "none").any()]
    diff = pd.concat(diffs, ignore_index=True) if diffs else interval_table(runs.iloc[:0], ["pipeline", "setting"], "accuracy")
    diff.to_csv(out / "paired_difference.csv", index=False)
    parity = parity_table(runs, diff)
    parity.to_csv(out / "parity.csv", index=False)
    compression_at_parity(parity).to_csv(out / "compression_at_parity.csv", index=False)
    convergence = convergence_table(results, runs)
    convergence.to_csv(out / "codebook_convergence.csv", index=False)
    caption = f"{caption}; bars: {METHOD}; against float32 links: {resolution_clause(diff)}"
    written = [out / "runs.csv", out / "final_accuracy.csv", out / "paired_difference.csv", out / "parity.csv", out / "compression_at_parity.csv",
               out / "codebook_convergence.csv"]
    order = sorted(runs["quantizer"].unique(), key=lambda m: (not m.startswith("VQ"), m))
    # Entropy-coded sizes vary by seed: each setting is drawn at its mean bits over seeds, so its
    # seeds form one point with one interval.
    runs = runs.assign(mean_bits=runs.groupby(["pipeline", "setting"])["bits_per_value"].transform("mean"))

    # The paper figure: accuracy against bits per activation value, one curve per method.
    pipelines = sorted(runs["pipeline"].unique())
    fig, axes = plt.subplots(1, len(pipelines), figsize=(5.2 * len(pipelines), 4), squeeze=False, sharey=True)
    for ax, pipeline in zip(axes[0], pipelines):
        data = runs[runs["pipeline"] == pipeline]
        sns.lineplot(data=data, x="mean_bits", y="accuracy", hue="quantizer", hue_order=order, marker="o", errorbar=errorbar(), err_style="bars", ax=ax)
        for _, r in data[data["quant"] == "vq"].drop_duplicates("setting").iterrows():  # curves run over the codes
            ax.annotate(f"{int(r['codes'])} codes", (r["mean_bits"], r["accuracy"]), fontsize=6, xytext=(3, 3), textcoords="offset points")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("bits per activation value on the links (codebooks included)")
        ax.set_ylabel("final test accuracy, last module")
        ax.set_title(f"{pipeline} DGL", fontsize=9)
        ax.legend(fontsize=7)
    _caption(fig, caption)
    written += save_figure(fig, out / "figures" / "accuracy_vs_bits")

    fig, axes = plt.subplots(1, 2, figsize=(10.4, 3.8))
    for ax, (column, label) in zip(axes, [("wallclock_s", "simulated wall-clock (s)"), ("buffer_MiB", "peak buffer memory, all buffers (MiB)")]):
        sns.lineplot(data=runs, x="mean_bits", y=column, hue="quantizer", hue_order=order, style="pipeline", marker="o", errorbar=errorbar(), err_style="bars", ax=ax)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("bits per activation value")
        ax.set_ylabel(label)
        ax.legend(fontsize=6)
    _caption(fig, caption)
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
        _caption(grid.figure, caption + "; last probe of each run")
        written += save_figure(grid.figure, out / "figures" / "link_measurements_vs_codes")

    drift = results[results["metric"] == "publication_drift"].merge(runs[["key", "setting"]], on="key")
    if not drift.empty:
        drift = drift.assign(link=drift["link"].astype(int))
        grid = sns.relplot(data=drift, x="publication", y="value", hue="setting", col="link", kind="line", errorbar=errorbar(), height=3.2, aspect=1.1)
        grid.set_titles("link {col_name}")
        for ax in grid.axes.flat:
            ax.set_yscale("log")
        grid.set_axis_labels("codebook publication", "drift per publication (relative squared change)")
        done = convergence.groupby("setting")["converged"].mean()
        note = "; converged (drift fallen {:g}x from its first {} publications): ".format(CONVERGED_FALL, _WINDOW) + ", ".join(f"{s} {100 * v:.0f}% of links x seeds" for s, v in done.items())
        _caption(grid.figure, caption + note)
        written += save_figure(grid.figure, out / "figures" / "codebook_drift")
    return written
