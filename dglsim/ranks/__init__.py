"""Real multi-process DGL on torch.distributed: one rank per module, gloo on CPU, launched by
torchrun or by `python -m dglsim.ranks`, writing the simulator's trace format."""

from dglsim.ranks.launch import LaunchResult, launch
from dglsim.ranks.worker import RankOptions, merge_traces, run_rank

__all__ = ["LaunchResult", "launch", "RankOptions", "merge_traces", "run_rank"]
