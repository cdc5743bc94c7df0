"""The pipeline simulator: workers, links, queues and replay buffers under sampled delays (no torch)."""

from dglsim.sim.fastpath import FastResult, sync_fast
from dglsim.sim.metrics import summarize_trace
from dglsim.sim.paper import paper_probabilities, simulate_paper
from dglsim.sim.simulate import simulate
from dglsim.sim.spec import MODES, PipelineSpec, load_spec, spec_from_dict
from dglsim.sim.streams import Compute, SimResult
from dglsim.sim.trace import ACTIONS, Row, Trace, TraceError, format_row, parse_row

__all__ = [
    "ACTIONS", "Compute", "FastResult", "MODES", "PipelineSpec", "Row", "SimResult", "Trace", "TraceError",
    "format_row", "load_spec", "paper_probabilities", "parse_row", "simulate", "simulate_paper",
    "spec_from_dict", "summarize_trace", "sync_fast",
]
