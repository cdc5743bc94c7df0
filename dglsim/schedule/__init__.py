"""Training methods as schedules: plans of actions per device (`plan`, `methods`), executed in
simulated time on the event engine (`execute`), with memory per device replayed from the run
(`memory`). Torch-free: real updates plug in through `run_plan(work=...)` (dglsim.train.scheduled)."""

from dglsim.schedule.execute import ActionCosts, PlanResult, run_plan
from dglsim.schedule.memory import DeviceMemory, memory_timeline, peak_memory
from dglsim.schedule.methods import MICRO_BATCHED, PLANS, build_plan
from dglsim.schedule.plan import KINDS, Action, Hold, Plan, PlanError, check_plan, describe

__all__ = [
    "Action", "ActionCosts", "DeviceMemory", "Hold", "KINDS", "MICRO_BATCHED", "PLANS", "Plan", "PlanError", "PlanResult",
    "build_plan", "check_plan", "describe", "memory_timeline", "peak_memory", "run_plan",
]
