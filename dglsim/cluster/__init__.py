"""The declared simulated cluster: named devices and links with cited specs, roofline step times,
and the per-module times a study's config declares (no torch)."""

from dglsim.cluster.declared import BALANCED_STEP_S, CLUSTER_KINDS, ClusterTimes, balanced, given, is_cluster, link_times, on_devices, profiled
from dglsim.cluster.devices import DEVICES, Device, device
from dglsim.cluster.links import LINKS, Link, link
from dglsim.cluster.roofline import Workload, calibrate_efficiency, step_time

__all__ = [
    "BALANCED_STEP_S", "CLUSTER_KINDS", "ClusterTimes", "DEVICES", "Device", "LINKS", "Link", "Workload",
    "balanced", "calibrate_efficiency", "device", "given", "is_cluster", "link", "link_times", "on_devices", "profiled", "step_time",
]
