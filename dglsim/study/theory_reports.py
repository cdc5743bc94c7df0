"""Report of the theory_bounds study, from tidy results only: per module and setting, the
corollary's bound against the measured min |grad L|^2 over training, the distance estimates
c_t, the quantization bias against its bound, and a table of the slack (bound / measured) at
the end of training beside the staleness bound against the largest staleness seen."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from dglsim.study import labels
from dglsim.study.figures import save_figure
from dglsim.study.stats import METHOD, errorbar, interval_table
from dglsim.study.sweep_reports import wrap_caption


def _with_settings(results: pd.DataFrame) -> pd.DataFrame:
    runs = results.drop_duplicates("key").set_index("key")
    names = runs.apply(labels.setting, axis=1, slowed=True)
    return results.assign(setting=results["key"].map(names))


def _panels(data: pd.DataFrame, metrics: dict[str, str], *, ylabel: str, caption: str, log: bool = True) -> plt.Figure:
    """Rows: settings; columns: modules; one line per metric (label: legend name) over the module's updates."""
    settings, modules = sorted(data["setting"].unique()), sorted(data["module"].dropna().unique())
    fig, axes = plt.subplots(len(settings), len(modules), figsize=(3.6 * len(modules), 2.8 * len(settings)), squeeze=False, sharex="col")
    palette = dict(zip(metrics.values(), sns.color_palette(n_colors=len(metrics))))
    for r, setting in enumerate(settings):
        for c, module in enumerate(modules):
            ax = axes[r][c]
            part = data[(data["setting"] == setting) & (data["module"] == module) & data["metric"].isin(metrics)]
            if part.empty:
                ax.set_visible(False)
                continue
            part = part.assign(quantity=part["metric"].map(metrics))
            sns.lineplot(data=part, x="step", y="value", hue="quantity", palette=palette, errorbar=errorbar(), marker="o", ax=ax)
            if log:
                ax.set_yscale("log")
            ax.set_title(f"{setting}\nmodule {int(module)}", fontsize=8)
            ax.set_xlabel("module updates")
            ax.set_ylabel(ylabel if c == 0 else "")
            if (r, c) != (0, 0) and ax.get_legend() is not None:
                ax.get_legend().remove()
    fig.suptitle(wrap_caption(f"{caption}; bands: {METHOD}"), fontsize=8)
    fig.tight_layout()
    return fig


def slack_table(results: pd.DataFrame) -> pd.DataFrame:
    """Per setting and module (mean over seeds, the slack with its t interval and n): at the last horizon, the bound, the measured
    min |grad L|^2 and their ratio (the slack); the estimated L and G; the largest staleness
    seen and its bound where one applies; the quantization bias, its bound and their ratio."""
    data = _with_settings(results)
    ends = data[data["metric"].isin(["bound", "min_grad_norm2"])]
    ends = ends[ends["step"] == ends.groupby(["key", "module"])["step"].transform("max")]
    table = ends.pivot_table(index=["setting", "key", "module"], columns="metric", values="value")
    constants = data[data["metric"].isin(["L_estimate", "G_estimate", "staleness_max", "staleness_bound"])]
    table = table.join(constants.pivot_table(index=["setting", "key", "module"], columns="metric", values="value"))
    quant = data[data["metric"].isin(["q_bias", "q_bias_bound"])]
    if not quant.empty:
        last = quant[quant["step"] == quant.groupby(["key", "module"])["step"].transform("max")]
        table = table.join(last.pivot_table(index=["setting", "key", "module"], columns="metric", values="value"))
        table["bias_slack"] = table["q_bias_bound"] / table["q_bias"]
    table["slack"] = table["bound"] / table["min_grad_norm2"]
    per_run = table.reset_index()
    summary = per_run.groupby(["setting", "module"]).mean(numeric_only=True).reset_index()
    # the slack's t interval over seeds and n, beside the means
    slack = interval_table(per_run, ["setting", "module"], "slack")[["setting", "module", "low", "high", "n"]]
    return summary.merge(slack.rename(columns={"low": "slack_low", "high": "slack_high"}), on=["setting", "module"])


def theory_bounds_report(results: pd.DataFrame, out: Path, caption: str) -> list[Path]:
    data = _with_settings(results)
    figures = out / "figures"
    written = save_figure(_panels(data, {"bound": "corollary bound", "min_grad_norm2": "measured min |∇L|²"}, ylabel="|∇L|²",
                                  caption=caption + "; the bound is computed from the estimated L, G and c_t (MMD)"), figures / "bound_vs_measured")
    written += save_figure(_panels(data, {"c_mmd": "c (MMD lower bound)", "c_tv_codes": "c (code-histogram lower bound)"}, ylabel="c_t", log=False,
                                   caption=caption + "; distance of each module's input law to the end-of-training law"), figures / "input_distance")
    quantized = data[data["metric"].isin(["q_bias", "q_mean_error", "q_bias_bound"])]
    if not quantized.empty:
        written += save_figure(_panels(quantized, {"q_bias": "|E Δg|", "q_mean_error": "E|Δg|", "q_bias_bound": "√(EΛ²)√D"}, ylabel="gradient error",
                                       caption=caption + "; quantization bias of the local gradient against its bound"), figures / "quantization_bias")
    table = slack_table(results)
    table.to_csv(out / "slack.csv", index=False)
    return written + [out / "slack.csv"]
