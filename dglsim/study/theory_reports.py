"""Report of the theory_bounds study, from tidy results only: per module and setting, the global
and trajectory bounds against the measured |grad L|^2 over training, the distance estimates
c_t, the quantization bias against its bound; tightness.csv (bound / measured at the end of
training, with each bound also rebuilt from another seed's estimates, beside the staleness bound
against the largest staleness seen) and a4_verdicts.csv (the decay exponent of c_t and whether
sum c_t converges), each with a figure."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from dglsim.study import labels
from dglsim.study.figures import save_figure
from dglsim.study.stats import METHOD, errorbar, interval_table
from dglsim.study.sweep_reports import wrap_caption
from dglsim.theory.bounds import power_law_decay
from dglsim.theory.training import held_out_bounds


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


def _run_rows(results: pd.DataFrame, key: str) -> list[dict]:
    part = results[results["key"] == key][["module", "metric", "step", "value"]]
    return [{"module": None if pd.isna(m) else int(m), "metric": metric, "step": None if pd.isna(st) else int(st), "value": v}
            for m, metric, st, v in part.itertuples(index=False)]


def held_out_rows(results: pd.DataFrame) -> pd.DataFrame:
    """Every run's global and trajectory bounds rebuilt from the estimates of the next seed of
    its setting (cyclic over the seeds run; none with a single seed): tidy rows with the run's key."""
    data = _with_settings(results)
    out = []
    for _, runs in data.drop_duplicates("key").sort_values("seed").groupby("setting"):
        keys = list(runs["key"])
        if len(keys) < 2:
            continue
        for i, key in enumerate(keys):
            rows = held_out_bounds(_run_rows(results, key), _run_rows(results, keys[(i + 1) % len(keys)]))
            out += [r | {"key": key} for r in rows]
    return pd.DataFrame(out, columns=["key", "module", "metric", "step", "value"])


def tightness_table(results: pd.DataFrame) -> pd.DataFrame:
    """Per setting and module, at the last horizon, mean over seeds with the t interval of each
    ratio: the global bound / measured min |grad L|^2 and the trajectory bound / measured
    eta-weighted mean |grad L|^2, each with the run's own estimates and rebuilt from another
    seed's (held_out_); the share of horizons where each held-out bound is above the measured
    value; the estimated L and G (each with its t interval over seeds); the largest staleness seen and its bound where one applies;
    the quantization bias, its Jacobian bound and their ratio."""
    held_out = held_out_rows(results)
    data = pd.concat([results, held_out], ignore_index=True) if len(held_out) else results
    data = _with_settings(data.assign(seed=data["key"].map(results.drop_duplicates("key").set_index("key")["seed"])))
    horizons = data[data["metric"].isin(["bound", "trajectory_bound", "held_out_bound", "held_out_trajectory_bound", "min_grad_norm2", "mean_grad_norm2"])]
    per_horizon = horizons.pivot_table(index=["setting", "key", "module", "step"], columns="metric", values="value").reset_index()
    held = per_horizon.dropna(subset=["held_out_bound"]) if "held_out_bound" in per_horizon else per_horizon.iloc[:0]
    last = per_horizon[per_horizon["step"] == per_horizon.groupby(["key", "module"])["step"].transform("max")].set_index(["setting", "key", "module"]).drop(columns="step")
    constants = data[data["metric"].isin(["L_estimate", "G_estimate", "staleness_max", "staleness_bound"])]
    table = last.join(constants.pivot_table(index=["setting", "key", "module"], columns="metric", values="value"))
    quant = data[data["metric"].isin(["q_bias", "q_bias_bound"])]
    if not quant.empty:
        q_last = quant[quant["step"] == quant.groupby(["key", "module"])["step"].transform("max")]
        table = table.join(q_last.pivot_table(index=["setting", "key", "module"], columns="metric", values="value"))
        table["bias_tightness"] = table["q_bias_bound"] / table["q_bias"]
    ratios = {"global_tightness": ("bound", "min_grad_norm2"), "trajectory_tightness": ("trajectory_bound", "mean_grad_norm2"),
              "held_out_global_tightness": ("held_out_bound", "min_grad_norm2"), "held_out_trajectory_tightness": ("held_out_trajectory_bound", "mean_grad_norm2")}
    for name, (bound, measured) in ratios.items():
        if bound in table:
            table[name] = table[bound] / table[measured]
    if not held.empty:
        holds = held.assign(global_holds=held["held_out_bound"] >= held["min_grad_norm2"], trajectory_holds=held["held_out_trajectory_bound"] >= held["mean_grad_norm2"])
        table = table.join(holds.groupby(["setting", "key", "module"])[["global_holds", "trajectory_holds"]].mean())
    per_run = table.reset_index()
    summary = per_run.groupby(["setting", "module"]).mean(numeric_only=True).reset_index()
    for name in [n for n in [*ratios, "L_estimate", "G_estimate"] if n in per_run]:  # A1's and A3's constants get their seed interval too
        interval = interval_table(per_run, ["setting", "module"], name)[["setting", "module", "low", "high", "n"]]
        summary = summary.merge(interval.rename(columns={"low": f"{name}_low", "high": f"{name}_high", "n": f"{name}_n"}), on=["setting", "module"])
    return summary


def a4_table(results: pd.DataFrame) -> pd.DataFrame:
    """Per setting and consumer module: the decay exponent alpha of c_t ~ t^-alpha (the MMD lower
    bound against the reference run's limit, t the module's updates), fitted per seed over the
    snapshots; its mean and t interval over seeds, and the verdict on sum_t c_t: summable when
    the interval lies above 1, not summable when it lies at or below 1, else unresolved (also
    when a seed had fewer than 3 snapshots with distinct steps and c > 0 to fit). The MMD bound
    has a floor set by the probe's size; where c_t reaches it the fitted decay flattens, so a
    "not summable" verdict says the lower bound stopped falling, not that c_t did."""
    data = _with_settings(results)
    cs = data[(data["metric"] == "c_mmd") & data["step"].notna()]
    fits = []
    for (setting, key, module), part in cs.groupby(["setting", "key", "module"]):
        alpha, se, n = power_law_decay(part["step"], part["value"])
        fits.append({"setting": setting, "key": key, "module": module, "alpha": alpha, "alpha_se": se, "points": n})
    fits = pd.DataFrame(fits, columns=["setting", "key", "module", "alpha", "alpha_se", "points"])
    table = interval_table(fits, ["setting", "module"], "alpha").rename(columns={"mean": "alpha", "low": "alpha_low", "high": "alpha_high", "n": "seeds"})
    # the fewest distinct steps a seed's fit had (a module that finishes its updates early in the run has few snapshots while it trains)
    table = table.merge(fits.groupby(["setting", "module"])["points"].min().rename("fewest_steps").reset_index(), on=["setting", "module"], how="right")

    def verdict(row) -> str:
        if not np.isfinite(row["alpha_low"]):
            return "unresolved"
        return "summable" if row["alpha_low"] > 1 else "not summable" if row["alpha_high"] <= 1 else "unresolved"

    return table.assign(verdict=table.apply(verdict, axis=1) if len(table) else [])


def _tightness_figure(table: pd.DataFrame, caption: str) -> plt.Figure:
    """Tightness of each bound per setting and module, with its t interval over seeds (log scale)."""
    forms = {"held_out_global_tightness": "global (held-out seed)", "held_out_trajectory_tightness": "trajectory (held-out seed)"}
    forms = {k: v for k, v in forms.items() if k in table}
    modules = sorted(table["module"].unique())
    fig, axes = plt.subplots(1, len(modules), figsize=(3.8 * len(modules), 0.5 * table["setting"].nunique() + 1.8), squeeze=False, sharey=True)
    settings = sorted(table["setting"].unique())
    for ax, module in zip(axes[0], modules):
        part = table[table["module"] == module].set_index("setting").reindex(settings)
        for i, (name, label) in enumerate(forms.items()):
            y = np.arange(len(settings)) + 0.2 * (i - 0.5)
            mean, low, high = part[name], part[f"{name}_low"], part[f"{name}_high"]
            ax.errorbar(mean, y, xerr=[(mean - low).clip(lower=0).fillna(0), (high - mean).clip(lower=0).fillna(0)], fmt="o", label=label, capsize=2)
        ax.axvline(1, color="grey", lw=0.8)
        ax.axvline(10, color="grey", lw=0.8, ls=":")
        ax.set_xscale("log")
        ax.set_yticks(range(len(settings)), settings, fontsize=7)
        ax.set_title(f"module {int(module)}", fontsize=8)
        ax.set_xlabel("bound / measured")
    axes[0][0].legend(fontsize=7)
    fig.suptitle(wrap_caption(f"{caption}; bars: {METHOD}"), fontsize=8)
    fig.tight_layout()
    return fig


def _a4_figure(table: pd.DataFrame, caption: str) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(6, 0.45 * len(table) + 1.8))
    labels_ = [f"{s} · module {int(m)}" for s, m in zip(table["setting"], table["module"])]
    y = np.arange(len(table))
    mean, low, high = table["alpha"], table["alpha_low"], table["alpha_high"]
    ax.errorbar(mean, y, xerr=[(mean - low).clip(lower=0).fillna(0), (high - mean).clip(lower=0).fillna(0)], fmt="o", capsize=2)
    ax.axvline(1, color="grey", lw=0.8)
    ax.set_yticks(y, [f"{lab}: {v}" for lab, v in zip(labels_, table["verdict"])], fontsize=7)
    ax.set_xlabel("decay exponent α of c_t ~ t^-α")
    fig.suptitle(wrap_caption(f"{caption}; bars: {METHOD}; Σ c_t < ∞ iff α > 1"), fontsize=8)
    fig.tight_layout()
    return fig


def theory_bounds_report(results: pd.DataFrame, out: Path, caption: str) -> list[Path]:
    data = _with_settings(results)
    figures = out / "figures"
    written = save_figure(_panels(data, {"bound": "global bound", "trajectory_bound": "trajectory bound", "mean_grad_norm2": "measured η-mean |∇L|²",
                                         "min_grad_norm2": "measured min |∇L|²"}, ylabel="|∇L|²",
                                  caption=caption + "; bounds from the run's own estimates (L, G, c_t; realized terms)"), figures / "bound_vs_measured")
    written += save_figure(_panels(data, {"c_mmd": "c (MMD lower bound)", "c_tv_codes": "c (code-histogram lower bound)"}, ylabel="c_t", log=False,
                                   caption=caption + "; distance of each module's input law to the limit (a reference run trained 3x longer)"), figures / "input_distance")
    quantized = data[data["metric"].isin(["q_bias", "q_mean_error", "q_bias_bound", "q_secant_bound"])]
    if not quantized.empty:
        written += save_figure(_panels(quantized, {"q_bias": "|E Δg|", "q_mean_error": "E|Δg|", "q_bias_bound": "Λ√D (Jacobian, held-out half)",
                                                   "q_secant_bound": "secant √(EΛ²)√D (diagnostic)"}, ylabel="gradient error",
                                       caption=caption + "; quantization bias of the local gradient against its bound"), figures / "quantization_bias")
    table = tightness_table(results)
    table.to_csv(out / "tightness.csv", index=False)
    written.append(out / "tightness.csv")
    if any(c.endswith("_low") for c in table.columns) and "held_out_global_tightness" in table:
        written += save_figure(_tightness_figure(table, caption + "; at the last horizon, bounds rebuilt from the next seed's estimates"), figures / "tightness")
    verdicts = a4_table(results)
    verdicts.to_csv(out / "a4_verdicts.csv", index=False)
    written.append(out / "a4_verdicts.csv")
    if not verdicts.empty:
        written += save_figure(_a4_figure(verdicts, caption + "; c_t is the MMD lower bound, fitted per seed over the snapshots"), figures / "a4_decay")
    return written
