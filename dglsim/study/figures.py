"""Figures and tables, pure functions of tidy results (the only plotting code in dglsim)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # figures are files; never open a window

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from dglsim.study.stats import METHOD, errorbar, interval_table  # noqa: E402

# what a latex_table cell holds, for table captions
INTERVAL_CELL = "mean $\\pm$ half-width of the " + METHOD.replace("%", "\\%") + " (n)"


def save_figure(fig: plt.Figure, stem: Path) -> list[Path]:
    """Write `stem`.pdf and `stem`.png; returns the paths."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".pdf"), stem.with_suffix(".png")]
    for path in paths:
        fig.savefig(path, bbox_inches="tight", dpi=150)
    plt.close(fig)
    return paths


def per_module_curves(df: pd.DataFrame, *, metric: str, hue: str, caption: str) -> plt.Figure:
    """`metric` against epoch, one panel per module, one line per `hue` value; the band is the
    95% t interval over seeds (dglsim.study.stats)."""
    data = df[df["metric"] == metric]
    modules = sorted(data["module"].unique())
    cols = min(3, len(modules))
    rows = -(-len(modules) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.2 * rows), squeeze=False, sharey=True)
    order = sorted(data[hue].unique())
    for ax, module in zip(axes.flat, modules):
        sns.lineplot(data=data[data["module"] == module], x="epoch", y="value", hue=hue, hue_order=order,
                     errorbar=errorbar(), marker="o", ax=ax)
        ax.set_title(f"module {module}")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(metric.replace("_", " "))
        if ax is not axes.flat[0] and ax.get_legend() is not None:
            ax.get_legend().remove()
    for ax in list(axes.flat)[len(modules):]:
        ax.set_visible(False)
    fig.suptitle(caption, fontsize=9)
    fig.tight_layout()
    return fig


def final_table(df: pd.DataFrame, *, metric: str, by: list[str]) -> pd.DataFrame:
    """Mean, t interval and n over seeds of `metric` at each run's last epoch."""
    data = df[df["metric"] == metric]
    last = data[data["epoch"] == data.groupby("key")["epoch"].transform("max")]
    return interval_table(last, by, "value")


def latex_table(table: pd.DataFrame, *, row: str, col: str, caption: str, label: str, scale: float = 100.0, signed: bool = False) -> str:
    """A booktabs table of 'mean ± half-width (n)' cells (values times `scale`; the half-width of
    the 95% t interval), rows `row`, columns `col`; `signed` writes differences with their sign."""
    cols = sorted(table[col].unique())
    lines = [
        "\\begin{table}[t]", "\\centering", f"\\caption{{{caption}}}", f"\\label{{{label}}}",
        "\\begin{tabular}{l" + "c" * len(cols) + "}", "\\toprule",
        f"{row} & " + " & ".join(f"{col} {c}" for c in cols) + " \\\\", "\\midrule",
    ]
    for r in sorted(table[row].unique()):
        cells = []
        for c in cols:
            hit = table[(table[row] == r) & (table[col] == c)]
            if hit.empty:
                cells.append("--")
            else:
                mean, half, n = hit["mean"].iloc[0] * scale, hit["half_width"].iloc[0] * scale, int(hit["n"].iloc[0])
                cells.append((f"{mean:+.1f}" if signed else f"{mean:.1f}") + ("" if pd.isna(half) else f" $\\pm$ {half:.1f}") + f" ({n})")
        lines.append(f"{r} & " + " & ".join(cells) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(lines) + "\n"
