"""The declared cluster: device and link presets, roofline times, per-module times of a config."""

import math

import pytest

from dglsim.cluster import (
    BALANCED_STEP_S,
    DEVICES,
    LINKS,
    Workload,
    balanced,
    calibrate_efficiency,
    device,
    is_cluster,
    link_times,
    on_devices,
    step_time,
)
from dglsim.errors import InvalidArgument


def test_presets_name_their_source_and_rank_as_published():
    assert {"v100", "a100", "h100", "cpu_core"} <= set(DEVICES) and {"nvlink", "pcie4", "100gbe", "10gbe"} <= set(LINKS)
    for d in DEVICES.values():
        assert d.peak_flops > 0 and d.memory_bandwidth > 0 and d.source
    for link in LINKS.values():
        assert link.bandwidth > 0 and link.latency > 0 and link.source
    flops = [DEVICES[n].peak_flops for n in ("cpu_core", "v100", "a100", "h100")]
    assert flops == sorted(flops)  # each generation is faster in fp32
    assert LINKS["nvlink"].bandwidth > LINKS["pcie4"].bandwidth > LINKS["100gbe"].bandwidth > LINKS["10gbe"].bandwidth


def test_roofline_time_is_the_slower_roof():
    compute_bound = Workload(macs=10**9, activations=10, params=10)
    memory_bound = Workload(macs=10, activations=10**8, params=10)
    v100 = device("v100")
    assert step_time(compute_bound, v100, 4, 1.0) == pytest.approx(6 * 10**9 * 4 / v100.peak_flops)
    assert step_time(memory_bound, v100, 4, 1.0) == pytest.approx(4 * (3 * 10**8 * 4 + 80) / v100.memory_bandwidth)
    assert step_time(compute_bound, v100, 4, 0.25) == pytest.approx(4 * step_time(compute_bound, v100, 4, 1.0))
    assert step_time(compute_bound, device("h100"), 4, 1.0) < step_time(compute_bound, v100, 4, 1.0)


def test_calibrated_efficiency_recovers_the_one_that_made_the_times():
    works = [Workload(10**8 * (j + 1), 10**5 * (3 - j), 10**4) for j in range(3)]
    a100 = device("a100")
    measured = [step_time(w, a100, 128, 0.37) for w in works]
    assert calibrate_efficiency(measured, works, a100, 128) == pytest.approx(0.37)
    # times that are not one efficiency's give a compromise, not any module's own
    mixed = [measured[0], 2 * measured[1], measured[2]]
    assert calibrate_efficiency(mixed, works, a100, 128) != pytest.approx(0.37)


def test_balanced_and_device_clusters():
    assert balanced(4).seconds == (BALANCED_STEP_S,) * 4
    works = [Workload(10**7, 10**5, 10**4), Workload(2 * 10**7, 10**5, 10**4)]
    mixed = on_devices(("v100", "h100"), works, 32, 0.5)
    same = on_devices("v100", works, 32, 0.5)
    assert mixed.seconds[0] == same.seconds[0] and mixed.seconds[1] < same.seconds[1]
    assert "v100/h100" in mixed.description and mixed.detail["sources"]["h100"]
    with pytest.raises(InvalidArgument, match="one device per module"):
        on_devices(("v100",), works, 32, 0.5)
    with pytest.raises(InvalidArgument, match="'cluster' device must be one of"):
        on_devices("tpu", works, 32, 0.5)


def test_cluster_names_and_links():
    assert is_cluster("balanced") and is_cluster("a100") and is_cluster(("a100", "v100"))
    assert not is_cluster("fast") and not is_cluster(()) and not is_cluster(("a100", "tpu"))
    assert link_times("10gbe", 0.0, None)[:2] == (LINKS["10gbe"].latency, LINKS["10gbe"].bandwidth)
    assert link_times(None, 0.0, None)[:2] == (0.0, math.inf)
    assert link_times(None, 1e-3, 1e9)[:2] == (1e-3, 1e9)
