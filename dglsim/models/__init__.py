"""Decoupled networks (K modules with auxiliary heads) and the paper's architectures."""

from dglsim.models.decoupled import ARCHITECTURES, DecoupledNet, NetworkSpec, build_network, eval_mode, even_splits
from dglsim.models.heads import HEADS, make_head
from dglsim.models.summary import ModuleSummary, format_summary, summarize, workloads

__all__ = [
    "ARCHITECTURES",
    "HEADS",
    "DecoupledNet",
    "ModuleSummary",
    "NetworkSpec",
    "build_network",
    "even_splits",
    "eval_mode",
    "format_summary",
    "make_head",
    "summarize",
    "workloads",
]
