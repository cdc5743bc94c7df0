"""The convergence theory, measured: estimators of the quantities its assumptions name (local
smoothness, gradient moments, distances between input laws), exact testbeds where those laws are
known in closed form, and the bound terms computed from the constants (see proofs/)."""

from dglsim.theory.bounds import SummabilityReport, corollary_bound, descent_slack, summability, tail_exponent
from dglsim.theory.distances import code_histogram_tv, median_bandwidth, mmd2_unbiased
from dglsim.theory.moments import Moments, batch_gradient, gradient_moments, per_sample_gradients
from dglsim.theory.smoothness import EigenEstimate, hessian_top_eigenvalue, secant_smoothness
from dglsim.theory.testbeds import LogisticTestbed, mean_path
from dglsim.theory.training import Snapshot, estimate_assumptions, train_with_snapshots

__all__ = [
    "SummabilityReport", "corollary_bound", "descent_slack", "summability", "tail_exponent",
    "code_histogram_tv", "median_bandwidth", "mmd2_unbiased",
    "Moments", "batch_gradient", "gradient_moments", "per_sample_gradients",
    "EigenEstimate", "hessian_top_eigenvalue", "secant_smoothness",
    "LogisticTestbed", "mean_path",
    "Snapshot", "estimate_assumptions", "train_with_snapshots",
]
