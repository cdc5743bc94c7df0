"""How runs are named in figures, tables and progress lines: one phrase per setting, built from
a run's settings, a RunConfig or a row of results (whose config columns carry the same names)."""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = ["quantizer", "pipeline", "setting", "progress", "method"]

# how each scheduled plan is named in figures (dglsim.schedule.PLANS)
SCHEDULE_NAMES = {"gpipe": "GPipe", "1f1b": "1F1B", "ddg": "DDG", "features_replay": "features replay", "dni": "DNI", "cdni": "cDNI",
                  "dgl": "DGL sync (plan)", "greedy": "sequential greedy"}


def _get(run: Any, key: str) -> Any:
    return getattr(run, key) if dataclasses.is_dataclass(run) else run[key]


def _optional(run: Any, key: str, default: Any) -> Any:
    """A setting that results stored before it existed lack: they ran with its default."""
    try:
        value = _get(run, key)
    except (KeyError, AttributeError):
        return default
    return default if value is None or value != value else value  # NaN: a column other runs filled


def quantizer(run: Any, *, size: bool = True) -> str:
    """What the links carry: float32, VQ or residual VQ (its stages and codes; N groups, γ, the
    initialisation, the code format and delta codebooks when not the defaults), or a scalar
    quantizer and its bits. `size=False` leaves out the codes and the bits (a curve over them).
    Codes are never "K": K is the number of modules."""
    family = _get(run, "quant")
    if family == "none":
        return "float32"
    if family == "vq":
        groups, gamma, codes = int(_get(run, "groups")), float(_get(run, "gamma")), int(_get(run, "codes"))
        stages = int(_optional(run, "stages", 1))
        name = f"RVQ {stages}×{codes} codes" if stages > 1 and size else f"RVQ {stages} stages" if stages > 1 else "VQ" + (f" {codes} codes" if size else "")
        extras = [f"N={groups}" if groups > 1 else "", f"γ={gamma:g}" if gamma != 0.99 else "",
                  "k-means++" if _optional(run, "codebook_init", "random") == "kmeans++" else "",
                  {"packed": "bit-packed", "zstd": "zstd"}.get(_optional(run, "code_format", "bytes"), ""),
                  "int8 deltas" if _optional(run, "codebook_update", "full") == "delta" else ""]
        return " ".join([name, *(e for e in extras if e)])
    name = {"uniform": "uniform", "stochastic": "stochastic rounding"}[family]
    return name + (f" {int(_get(run, 'quant_bits'))}-bit" if size else "")


def pipeline(run: Any, *, slowed: bool = False) -> str:
    """sync / async / paper, with the slowdown when there is one (and the slowed module)."""
    slowdown = float(_get(run, "slowdown"))
    label = str(_get(run, "pipeline"))
    if slowdown != 1:
        label += f" slowdown {slowdown:g}" + (f" on module {int(_get(run, 'slowed'))}" if slowed else "")
    return label


def setting(run: Any, *, k: bool = False, slowed: bool = False) -> str:
    """The pipeline, then the quantizer when the links are quantized; K first when asked."""
    label = (f"K={int(_get(run, 'k'))} " if k else "") + pipeline(run, slowed=slowed)
    return label + (f", {quantizer(run)}" if _get(run, "quant") != "none" else "")


def jitter(run: Any) -> str:
    """How a step's compute time varies around its module's base time."""
    family = _get(run, "compute_jitter")
    if family == "constant":
        return "constant compute times"
    text = f"lognormal jitter (cv {float(_get(run, 'jitter_cv')):g})" if family in ("lognormal", "lognormal_straggler") else ""
    if family in ("straggler", "lognormal_straggler"):
        text += (" and " if text else "") + f"stragglers ({float(_get(run, 'straggler_q')):g} of the steps {float(_get(run, 'straggler_factor')):g}x slower)"
    return text


def method(run: Any) -> str:
    """The training method: DGL and its pipeline mode (simulated), a scheduled plan (with its
    micro-batches), or an epoch-loop method."""
    name = _get(run, "method")
    if name == "simulated":
        return f"DGL {_get(run, 'pipeline')}"
    if name == "scheduled":
        schedule = _get(run, "schedule")
        m = int(_optional(run, "micro_batches", 1))
        return SCHEDULE_NAMES[schedule] + (f" m={m}" if m > 1 else "")
    return str(name)


def progress(cfg: Any) -> str:
    """One run as the study's progress line names it."""
    if cfg.method == "timing":
        return f"K={cfg.k} x {cfg.replicas} replicas {cfg.pipeline} seed {cfg.seed}"
    if cfg.method == "distributed":
        return f"real and simulated {setting(cfg, k=True)} seed {cfg.seed}"
    if cfg.method == "simulated":
        return f"{setting(cfg)} M={cfg.buffer} {cfg.policy} seed {cfg.seed}"
    if cfg.method == "scheduled":
        return f"{method(cfg)}" + (f" slowdown {cfg.slowdown:g}" if cfg.slowdown != 1 else "") + f" seed {cfg.seed}"
    return f"{cfg.method} seed {cfg.seed}"
