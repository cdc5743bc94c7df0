"""Local steps, per-module optimizers, the training methods (synchronous DGL, sequential greedy,
backprop) and DGL trained in simulated time."""

from dglsim.train.evaluate import evaluate
from dglsim.train.methods import METHODS, TrainConfig, total_steps, train
from dglsim.train.optim import OptimConfig
from dglsim.train.simulated import SimulatedRun, batch_payload_bytes, profile_modules, train_simulated
from dglsim.train.steps import backprop_step, dgl_step, local_step

__all__ = [
    "METHODS", "OptimConfig", "SimulatedRun", "TrainConfig", "backprop_step", "batch_payload_bytes", "dgl_step",
    "evaluate", "local_step", "profile_modules", "total_steps", "train", "train_simulated",
]
