"""The report of straggler_scale, from tidy results only: DGL's straggler sensitivity against
data-parallel backprop (K = 1) as the replicas per module grow.

Figures: throughput, the fraction of time lost to stragglers and the all-reduce time per
update, against the replicas per module, one line per method (95% t intervals over seeds).
Tables: the straggler fraction per method and N (mean, interval, n), and each DGL setting
minus data-parallel backprop of the same seed and N (paired: a seed keys every replica's
random stream, so both see the same draws where their replicas coincide).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from dglsim.study.figures import INTERVAL_CELL, latex_table, save_figure
from dglsim.study.stats import METHOD, errorbar, interval_table, paired_differences, resolution_clause
from dglsim.study.sweep_reports import _log_axis, wrap_caption

__all__ = ["straggler_scale_report", "method_label"]

BASELINE = "DP backprop (K=1)"


def method_label(k: int, pipeline: str) -> str:
    return BASELINE if k == 1 else f"DGL K={k} {pipeline}"


def _per_run(results: pd.DataFrame) -> pd.DataFrame:
    """One row per run: replicas, method, seed, and its run-level metrics (module-level ones averaged over modules)."""
    wide = results.pivot_table(index=["key", "k", "pipeline", "replicas", "seed"], columns="metric", values="value", aggfunc="mean").reset_index()
    return wide.assign(method=[method_label(int(k), p) for k, p in zip(wide["k"], wide["pipeline"])],
                       scheme=[BASELINE if k == 1 else f"DGL K={int(k)}" for k in wide["k"]])


def straggler_scale_report(results: pd.DataFrame, out: Path, caption: str) -> list[Path]:
    runs = _per_run(results)
    schemes = [BASELINE] * (BASELINE in set(runs["scheme"])) + sorted((s for s in runs["scheme"].unique() if s != BASELINE), key=lambda s: int(s.split("=")[1]))
    written: list[Path] = []

    table = interval_table(runs, ["method", "replicas"], "straggler_fraction")
    table.to_csv(out / "straggler_fraction.csv", index=False)
    written.append(out / "straggler_fraction.csv")
    baseline = runs[runs["method"] == BASELINE]
    diff = pd.DataFrame()
    if not baseline.empty and runs["method"].nunique() > 1:
        diff = pd.concat([paired_differences(part[part["method"] != BASELINE], baseline[baseline["replicas"] == n], ["method", "replicas"], "straggler_fraction")
                          for n, part in runs.groupby("replicas")], ignore_index=True)
        diff.to_csv(out / "paired_difference.csv", index=False)
        tex = out / "paired_difference.tex"
        tex.write_text(latex_table(diff, row="method", col="replicas", signed=True, label="tab:straggler-scale-paired",
                                   caption=f"Fraction of time lost to stragglers (\\%), each method minus data-parallel backprop of the same seed and replicas, {INTERVAL_CELL}; "
                                           f"{resolution_clause(diff)}. " + caption))
        written += [out / "paired_difference.csv", tex]
    tex = out / "straggler_fraction.tex"
    tex.write_text(latex_table(table, row="method", col="replicas", label="tab:straggler-scale",
                               caption=f"Fraction of time lost to stragglers (\\%: 1 - throughput / throughput at constant times of the same mean), {INTERVAL_CELL}. " + caption))
    written.append(tex)
    resolves = resolution_clause(diff) if not diff.empty else "no baseline in these runs: no paired comparison"

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    panels = [("throughput", "throughput (samples per simulated s)", True),
              ("straggler_fraction", "time lost to stragglers (fraction)", False),
              ("allreduce_s", "all-reduce per update (s)", False)]
    for ax, (metric, label, log_y) in zip(axes, panels):
        sns.lineplot(data=runs, x="replicas", y=metric, hue="scheme", hue_order=schemes, style="pipeline", style_order=["sync", "async"], marker="o",
                     errorbar=errorbar(), err_style="bars", palette="viridis", ax=ax)
        _log_axis(ax, runs["replicas"].unique())
        if log_y:
            ax.set_yscale("log")
        ax.set_xlabel("replicas per module N")
        ax.set_ylabel(label)
        ax.legend(fontsize=7)
    fig.suptitle(wrap_caption(f"{caption}; bars: {METHOD}; the all-reduce time is a closed form, the same for every seed (mean over modules, 0 on one replica); "
                              f"{resolves}"), fontsize=7)
    fig.tight_layout(rect=(0, 0, 1, 0.88))
    written += save_figure(fig, out / "figures" / "straggler_scale")
    return written
