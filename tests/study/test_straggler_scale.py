"""straggler_scale: timing runs of DGL and data-parallel backprop on a declared cluster. The
measure of straggler cost is zero where there is nothing to straggle (the negative control),
grows with the replicas, and on constant times the throughput of data-parallel backprop is the
closed form of its compute and ring all-reduce."""

import pandas as pd
import pytest

from dglsim.cluster import link
from dglsim.models.decoupled import build_network
from dglsim.models.summary import summarize
from dglsim.recipe.cluster import cluster_times
from dglsim.study import RunConfig, load_study, run_study
from dglsim.study.timing import FLOAT32_BYTES

FAST = {"steps": 200, "replicas": [1, 16]}


def _runs(tmp_path, overrides) -> pd.DataFrame:
    outcome = run_study(load_study("straggler_scale"), profile="smoke", overrides=FAST | overrides, out=tmp_path, show_progress=False)
    assert not outcome.failed
    results = pd.read_csv(tmp_path / "results.csv")
    return results[results["module"].isna()].pivot_table(index=["k", "pipeline", "replicas", "seed"], columns="metric", values="value").reset_index()


@pytest.mark.slow
def test_smoke_profile_writes_its_figure_and_tables(tmp_path):
    runs = _runs(tmp_path, {})
    for name in ("figures/straggler_scale.png", "straggler_fraction.csv", "straggler_fraction.tex", "paired_difference.csv"):
        assert (tmp_path / name).exists(), name
    wide = runs.set_index(["k", "pipeline", "replicas"])["straggler_fraction"]
    for k, pipeline in {(k, p) for k, p, _ in wide.index}:
        assert wide[(k, pipeline, 16)] > wide[(k, pipeline, 1)] + 0.1  # more replicas, more waiting for the slowest


@pytest.mark.slow
def test_constant_times_lose_nothing_to_stragglers(tmp_path):
    """The negative control: the same measure on constant compute times is zero, every run."""
    runs = _runs(tmp_path, {"compute_jitter": "constant"})
    assert (runs["straggler_fraction"].abs() < 1e-12).all()


def test_data_parallel_backprop_on_constant_times_is_the_closed_form():
    """K = 1, N replicas, constant times: every update takes compute + 2 (N-1) alpha + 2 (N-1)/N G beta
    (ring all-reduce of the G gradient bytes), so throughput = N x batch / that."""
    from dglsim.study.timing import run_timing

    base = {k: v for k, v in load_study("straggler_scale").base.items() if k in RunConfig.keys()}
    base = {k: tuple(v) if isinstance(v, list) else v for k, v in base.items()}
    cfg = RunConfig(**base | {"k": 1, "replicas": 16, "pipeline": "sync", "compute_jitter": "constant", "steps": 300})
    net = build_network(cfg.network_spec(), seed=0)
    rows, _ = run_timing(cfg, net)
    got = {r["metric"]: r["value"] for r in rows if "module" not in r}
    compute = cluster_times(cfg, net).seconds[0]
    gradients = FLOAT32_BYTES * sum(m.stage_params + m.head_params for m in summarize(net))
    net_link = link("100gbe")
    update = compute + 2 * 15 * net_link.latency + 2 * 15 / 16 * gradients / net_link.bandwidth
    assert got["throughput"] == pytest.approx(16 * cfg.batch_size / update, rel=1e-9)
    assert got["straggler_fraction"] == pytest.approx(0.0, abs=1e-12)
