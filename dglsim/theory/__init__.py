"""Estimators of the quantities the convergence theory's assumptions name, from real training:
local smoothness, gradient moments, distances between input laws."""

from dglsim.theory.distances import code_histogram_tv, median_bandwidth, mmd2_unbiased
from dglsim.theory.moments import Moments, batch_gradient, gradient_moments, per_sample_gradients
from dglsim.theory.smoothness import EigenEstimate, hessian_top_eigenvalue, secant_smoothness

__all__ = [
    "code_histogram_tv", "median_bandwidth", "mmd2_unbiased",
    "Moments", "batch_gradient", "gradient_moments", "per_sample_gradients",
    "EigenEstimate", "hessian_top_eigenvalue", "secant_smoothness",
]
