"""Local steps, per-module optimizers, and the training methods: synchronous DGL, sequential greedy, backprop."""

from dglsim.train.evaluate import evaluate
from dglsim.train.methods import METHODS, TrainConfig, total_steps, train
from dglsim.train.optim import OptimConfig
from dglsim.train.steps import backprop_step, dgl_step, local_step

__all__ = ["METHODS", "OptimConfig", "TrainConfig", "backprop_step", "dgl_step", "evaluate", "local_step", "total_steps", "train"]
