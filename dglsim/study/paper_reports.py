"""paper_tables: the seed paper's comparison tables, our numbers beside the published ones.

A comparison is one network split one way (arch, depth, K): the DNI comparison on the 3-layer
CNN of Jaderberg et al. (2017, appendix C.1), K = 3; the DDG and features-replay comparison on
ResNet-110 split into K = 2, 3, 4 modules. Each row is a method's final test accuracy (the last
module's, after the run's last epoch) with its interval over seeds, beside the published value
where one is on record (`PUBLISHED`, each with where it comes from), and the method minus DGL of
the same seed (paired: same initial weights and data order).

Published values are for the published setting: a profile that trains less (the default one,
on a subset for a CPU) is compared with them for shape, not for agreement; the caption says
which profile ran.
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

__all__ = ["paper_tables_report", "PUBLISHED", "comparison_name"]

REFERENCE = "dgl"  # paired differences are against DGL of the same seed

# (arch, K) -> where the numbers come from, and test accuracy by method label (dglsim.study.labels.method)
PUBLISHED: dict[tuple[str, int], tuple[str, dict[str, float]]] = {
    ("dni_cnn", 3): (
        "the authors' logs (eugenium/DGL, dni_comparisons/*.log), test top-1 at epoch 1500, Adam 3e-5, batch 256",
        {"dgl": 0.8505, "backprop": 0.8435, "cDNI": 0.8139, "DNI": 0.6324},
    ),
}


def comparison_name(arch: str, depth: float | None, k: int) -> str:
    """How a comparison is named in tables and figures (depth None or NaN: the arch's default)."""
    if arch == "dni_cnn":
        return f"DNI comparison: 3-layer CNN, K={k}"
    if arch == "resnet_cifar":
        return f"DDG/FR comparison: ResNet-{20 if depth is None or depth != depth else int(depth)}, K={k}"
    return f"{arch}, K={k}"


def _final(results: pd.DataFrame) -> pd.DataFrame:
    """Per run: the last module's test accuracy at the run's last evaluation."""
    acc = results[(results["metric"] == "test_accuracy") & (results["module"] == results["k"] - 1)]
    order = [c for c in ("epoch", "time") if c in acc.columns]
    last = acc.sort_values(["key", *order]).groupby("key").tail(1)
    depth = last["depth"] if "depth" in last.columns else pd.Series(np.nan, index=last.index)
    return last.assign(label=[labels.method(r) for r in last.to_dict("records")],
                       comparison=[comparison_name(a, d, int(k)) for a, d, k in zip(last["arch"], depth, last["k"])],
                       accuracy=last["value"])


def _published(final: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (comparison, arch, k), _ in final.groupby(["comparison", "arch", "k"]):
        source, values = PUBLISHED.get((arch, int(k)), ("", {}))
        rows += [{"comparison": comparison, "label": label, "published": value, "source": source} for label, value in values.items()]
    return pd.DataFrame(rows, columns=["comparison", "label", "published", "source"])


def _cell(mean: float, half: float, n: int) -> str:
    if pd.isna(mean):
        return "--"
    return f"{100 * mean:.1f}" + ("" if pd.isna(half) else f" $\\pm$ {100 * half:.1f}") + f" ({n})"


def paper_tables_report(results: pd.DataFrame, out: Path, caption: str) -> list[Path]:
    final = _final(results)
    ours = interval_table(final, ["comparison", "label"], "accuracy")
    published = _published(final)
    table = ours.merge(published, on=["comparison", "label"], how="outer")
    frames = []
    for comparison, part in final.groupby("comparison"):
        reference = part[part["label"] == REFERENCE]
        if not reference.empty:
            frames.append(paired_differences(part[part["label"] != REFERENCE], reference[["seed", "accuracy"]], ["label"], "accuracy").assign(comparison=comparison))
    diff = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["comparison", "label", "mean", "low", "high", "half_width", "n"])
    table = table.merge(diff.rename(columns={c: f"minus_dgl_{c}" for c in ("mean", "low", "high", "half_width", "n")}), on=["comparison", "label"], how="left")
    csv = out / "paper_tables.csv"
    table.to_csv(csv, index=False)
    resolves = resolution_clause(diff) if not diff.empty else "no DGL reference ran: no paired difference"

    lines = ["\\begin{table}[t]", "\\centering",
             f"\\caption{{The seed paper's comparisons: final test accuracy (\\%) of the last module, {INTERVAL_CELL}; the published value where one is on record; "
             f"the method minus DGL of the same seed (points), {resolves}. {caption}}}",
             "\\label{tab:paper-tables}", "\\begin{tabular}{llccc}", "\\toprule", "comparison & method & ours & published & minus DGL \\\\", "\\midrule"]
    for _, row in table.sort_values(["comparison", "label"]).iterrows():
        n = 0 if pd.isna(row["n"]) else int(row["n"])
        diff_n = 0 if pd.isna(row["minus_dgl_n"]) else int(row["minus_dgl_n"])
        paired = "--" if pd.isna(row["minus_dgl_mean"]) else f"{100 * row['minus_dgl_mean']:+.1f}" + (
            "" if pd.isna(row["minus_dgl_half_width"]) else f" $\\pm$ {100 * row['minus_dgl_half_width']:.1f}") + f" ({diff_n})"
        pub = "--" if pd.isna(row["published"]) else f"{100 * row['published']:.2f}"
        lines.append(f"{row['comparison']} & {row['label']} & {_cell(row['mean'], row['half_width'], n)} & {pub} & {paired} \\\\")
    sources = sorted({s for s in published["source"] if s})
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    if sources:
        lines.insert(-3, "\\multicolumn{5}{l}{\\footnotesize published: " + "; ".join(sources) + "} \\\\")
    tex = out / "paper_tables.tex"
    tex.write_text("\n".join(lines) + "\n")
    written = [csv, tex]
    if not diff.empty:
        diff.to_csv(out / "paired_difference.csv", index=False)
        written.append(out / "paired_difference.csv")

    comparisons = sorted(final["comparison"].unique())
    fig, axes = plt.subplots(1, len(comparisons), figsize=(4.6 * len(comparisons), 4.2), squeeze=False)
    for ax, comparison in zip(axes[0], comparisons):
        part = final[final["comparison"] == comparison]
        order = sorted(part["label"].unique())
        sns.pointplot(data=part.assign(accuracy=part["accuracy"] * 100), x="label", y="accuracy", order=order, errorbar=errorbar(), linestyle="none",
                      color="tab:blue", ax=ax, label="ours")
        pub = published[(published["comparison"] == comparison) & published["label"].isin(order)]
        if not pub.empty:
            ax.scatter([order.index(label) for label in pub["label"]], pub["published"] * 100, marker="x", color="black", zorder=5, label="published")
        ax.set_title(comparison, fontsize=8)
        ax.set_xlabel("")
        ax.set_ylabel("final test accuracy (%), last module")
        ax.tick_params(axis="x", labelsize=7, rotation=20)
        ax.legend(fontsize=6)
    fig.suptitle(wrap_caption(f"{caption}; points: ours, {METHOD}; crosses: published (their setting: full data and epochs); {resolves} (paper_tables.csv)"), fontsize=7)
    fig.tight_layout(rect=(0, 0, 1, 0.86))
    written += save_figure(fig, out / "figures" / "paper_tables")
    return written
