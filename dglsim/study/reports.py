"""What each study writes from its tidy results: figures (PDF and PNG), a LaTeX table, a CSV.

A report is a function (results, outdir, caption) -> list of written paths. Studies without a
report of their own get the generic one (per-module learning curves by method).
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Callable

import pandas as pd

from dglsim.errors import InvalidArgument
from dglsim.study.figures import INTERVAL_CELL, final_table, latex_table, per_module_curves, save_figure
from dglsim.study.paper_reports import paper_tables_report
from dglsim.study.quant_reports import quant_sweep_report
from dglsim.study.race_reports import method_race_report
from dglsim.study.scale_reports import straggler_scale_report
from dglsim.study.sim_reports import sim_vs_real_report
from dglsim.study.stats import METHOD, paired_differences, resolution_clause
from dglsim.study.sweep_reports import authors_buffer_report, buffer_sweep_report, delay_sweep_report
from dglsim.study.theory_reports import theory_bounds_report

Report = Callable[[pd.DataFrame, Path, str], list[Path]]


def learning_curves_report(results: pd.DataFrame, out: Path, caption: str) -> list[Path]:
    """Per-module test accuracy over epochs by method, with 95% t intervals over seeds; final
    accuracy table; every method paired with synchronous DGL of the same seed."""
    if "greedy" in set(results.get("method", ())):
        caption += "; greedy's epochs are each module's own, trained after the modules before it"
    caption += f"; bands: {METHOD}"
    written = save_figure(per_module_curves(results, metric="test_accuracy", hue="method", caption=caption), out / "figures" / "test_accuracy")
    if (results["metric"] == "ensemble_accuracy").any():
        written += save_figure(per_module_curves(results, metric="ensemble_accuracy", hue="method", caption=caption + " (ensemble of heads 0..j)"), out / "figures" / "ensemble_accuracy")
    table = final_table(results, metric="test_accuracy", by=["method", "module"])
    table.to_csv(out / "final_accuracy.csv", index=False)
    tex = out / "final_accuracy.tex"
    tex.write_text(latex_table(table, row="method", col="module", caption=f"Final test accuracy (\\%), {INTERVAL_CELL}. " + caption, label="tab:final-accuracy"))
    written += [out / "final_accuracy.csv", tex]
    # every other method against synchronous DGL of the same seed (same initial weights and data order)
    acc = results[results["metric"] == "test_accuracy"]
    last = acc[acc["epoch"] == acc.groupby("key")["epoch"].transform("max")]
    if "dgl" in set(last["method"]) and last["method"].nunique() > 1:
        diff = pd.concat([paired_differences(part[part["method"] != "dgl"], part[part["method"] == "dgl"], ["method", "module"], "value")
                          for _, part in last.groupby("module")], ignore_index=True)
        diff.to_csv(out / "paired_difference.csv", index=False)
        diff_tex = out / "paired_difference.tex"
        diff_tex.write_text(latex_table(diff, row="method", col="module", signed=True, label="tab:final-accuracy-paired",
                                        caption=f"Final test accuracy minus synchronous DGL of the same seed (points), {INTERVAL_CELL}; {resolution_clause(diff)}. " + caption))
        written += [out / "paired_difference.csv", diff_tex]
    return written


REPORTS: dict[str, Report] = {
    "sync_baselines": learning_curves_report,
    "delay_sweep": delay_sweep_report,
    "buffer_sweep": buffer_sweep_report,
    "authors_buffer": authors_buffer_report,
    "quant_sweep": quant_sweep_report,
    "theory_bounds": theory_bounds_report,
    "sim_vs_real": sim_vs_real_report,
    "straggler_scale": straggler_scale_report,
    "method_race": method_race_report,
    "paper_tables": paper_tables_report,
}


def write_report(study: str, results: pd.DataFrame, out: Path, caption: str, settings: dict | None = None) -> list[Path]:
    """results.csv and the study's report; `settings` (the study's [report] table) go to the
    report function as keyword arguments (an unknown one is an error of the study file)."""
    out.mkdir(parents=True, exist_ok=True)
    results.to_csv(out / "results.csv", index=False)
    check_report_settings(study, settings or {})
    return [out / "results.csv"] + REPORTS.get(study, learning_curves_report)(results, out, caption, **(settings or {}))


def check_report_settings(study: str, settings: dict) -> None:
    """Raise InvalidArgument unless the study's report takes every setting of its [report] table
    (checked before any run starts)."""
    takes = list(inspect.signature(REPORTS.get(study, learning_curves_report)).parameters)[3:]
    unknown = sorted(set(settings) - set(takes))
    if unknown:
        raise InvalidArgument(f"the [report] table of study {study!r} sets {unknown}; its report takes {takes or 'no settings'}")
