"""The study CLI: listing, config rejection before any run, a smoke run, and resume."""

import dataclasses
import json
import sqlite3
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from dglsim.errors import InvalidArgument
from dglsim.study import RunConfig, load_study, parse_assignment, run_study
from dglsim.study.cli import main
from dglsim.study.theory_reports import theory_bounds_report

# A few seconds per run: 2 classes' worth of the smoke profile, one epoch.
FAST = {"epochs": 1, "train_per_class": 10, "test_per_class": 5}


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "dglsim.study", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_list_names_the_studies():
    result = _cli("list")
    assert result.returncode == 0 and "sync_baselines" in result.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["--set", "k=0"], "'k' of NetworkSpec must be an int >= 1, got 0"),
    (["--set", "lr=-1.0"], "'lr' of OptimConfig must be a finite real > 0, got -1.0"),
    (["--set", "method=sgd"], "'method' of RunConfig must be one of ['dgl', 'greedy', 'backprop', 'simulated', 'distributed', 'timing', 'scheduled'], got 'sgd'"),
    (["--set", "widht=32"], "unknown key 'widht'"),
    (["--set", "width"], "'--set' must be key=value, got 'width'"),
    (["--seeds", "0"], "'--seeds' must be an int >= 1, got 0"),
])
def test_bad_config_is_rejected_before_any_run(tmp_path, args, message):
    out = tmp_path / "out"
    result = _cli("sync_baselines", "--profile", "smoke", "--out", str(out), *args)
    assert result.returncode == 2 and message in result.stderr
    assert not (out / "results.sqlite").exists()  # nothing ran


def test_unknown_study_lists_the_known_ones():
    with pytest.raises(InvalidArgument, match="study 'nope' not found.*sync_baselines"):
        load_study("nope")


def test_assignments_parse_toml_values_and_bare_words():
    assert parse_assignment("k=3") == ("k", 3)
    assert parse_assignment("lr = 0.05") == ("lr", 0.05)
    assert parse_assignment("arch=vgg") == ("arch", "vgg")
    assert parse_assignment('method=["dgl", "backprop"]') == ("method", ["dgl", "backprop"])


def test_grid_times_seeds_and_overrides():
    spec = load_study("sync_baselines")
    runs = spec.runs("smoke", {"method": "dgl", "k": 3}, seeds=3)
    assert [(r.method, r.seed, r.k) for r in runs] == [("dgl", s, 3) for s in range(3)]
    assert len({r.key() for r in spec.runs("smoke", {}, seeds=2)}) == 6


@pytest.mark.data
def test_smoke_profile_writes_figures_table_and_provenance(tmp_path, cifar10):
    assert main(["sync_baselines", "--profile", "smoke", "--out", str(tmp_path), "--seeds", "1", "--no-progress"]) == 0
    for name in ("figures/test_accuracy.pdf", "figures/test_accuracy.png", "final_accuracy.tex", "results.csv"):
        assert (tmp_path / name).stat().st_size > 0
    results = pd.read_csv(tmp_path / "results.csv")
    assert set(results["method"]) == {"dgl", "greedy", "backprop"}
    with sqlite3.connect(tmp_path / "results.sqlite") as db:
        prov = db.execute("SELECT provenance FROM runs LIMIT 1").fetchone()[0]
    for field in ("git_revision", "versions", "device_name", "allocator", "torch_threads"):
        assert field in prov
    assert "\\begin{tabular}" in (tmp_path / "final_accuracy.tex").read_text()


@pytest.mark.data
def test_interrupted_study_resumes_without_redoing_or_losing_runs(tmp_path, cifar10):
    spec = load_study("sync_baselines")
    calls = []

    def interrupt_after_two(cfg: RunConfig) -> None:
        calls.append(cfg.key())
        if len(calls) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_study(spec, profile="smoke", overrides=FAST, seeds=1, out=tmp_path, on_run_stored=interrupt_after_two, show_progress=False)
    first = run_study.__globals__["ResultsStore"](tmp_path / "results.sqlite").runs()
    assert sorted(first["key"]) == sorted(calls)  # both finished runs survived the interruption

    outcome = run_study(spec, profile="smoke", overrides=FAST, seeds=1, out=tmp_path, show_progress=False)
    assert len(outcome.executed) == 1 and not set(outcome.executed) & set(calls)  # only the missing run
    runs = outcome.store.runs()
    assert len(runs) == 3
    kept = runs.set_index("key").loc[calls, "finished_at"]
    assert (kept.values == first.set_index("key").loc[calls, "finished_at"].values).all()  # not redone


@pytest.mark.data
def test_parallel_jobs_store_the_same_results_as_serial(tmp_path, cifar10):
    """Runs are deterministic on CPU, so running them in 2 processes changes nothing."""
    spec = load_study("sync_baselines")
    serial = run_study(spec, profile="smoke", overrides=FAST | {"method": "dgl"}, seeds=2, out=tmp_path / "a", show_progress=False)
    parallel = run_study(spec, profile="smoke", overrides=FAST | {"method": "dgl"}, seeds=2, jobs=2, out=tmp_path / "b", show_progress=False)
    a = serial.store.results().sort_values(["key", "metric", "epoch", "module"]).reset_index(drop=True)
    b = parallel.store.results().sort_values(["key", "metric", "epoch", "module"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)


def test_reference_runs_and_profile_axes_and_seeds():
    spec = load_study("delay_sweep")
    runs = spec.runs("smoke", {})
    asyn = [r for r in runs if r.pipeline == "async"]
    assert sorted({r.slowdown for r in asyn}) == [1.0, 2.0] and {r.buffer for r in asyn} == {1, 5}  # the profile's axes
    sync = [r for r in runs if r.pipeline == "sync"]
    assert len(sync) == 1 and sync[0].slowdown == 1.0  # one reference run per seed (the smoke profile has 1)
    assert len(spec.runs("default", {})) == (4 * 2 + 1) * 3  # 4 slowdowns x 2 buffers + the reference, 3 seeds


def test_slowed_module_must_exist():
    with pytest.raises(InvalidArgument, match="'slowed' of RunConfig must be a module index < k = 3, got 3"):
        RunConfig(k=3, slowed=3)


@pytest.mark.data
@pytest.mark.parametrize("study", ["delay_sweep", "buffer_sweep"])
def test_async_study_smoke_profiles_write_their_figures(tmp_path, cifar10, study):
    assert main([study, "--profile", "smoke", "--out", str(tmp_path), "--no-progress"]) == 0
    figures = sorted(p.name for p in (tmp_path / "figures").glob("*.png"))
    assert figures and all((tmp_path / "figures" / f).stat().st_size > 0 for f in figures)
    results = pd.read_csv(tmp_path / "results.csv")
    assert set(results["pipeline"]) == {"async", "sync"}
    assert {"test_accuracy", "staleness_mean", "staleness_count", "buffer_bytes", "compute_time_s", "makespan", "train_loss"} <= set(results["metric"])
    modules = pd.read_csv(tmp_path / "modules.csv")
    assert (modules["buffer_MiB"][modules["module"] > 0] > 0).all() and (modules["compute_time_s"] > 0).all()
    assert (results[results["metric"] == "staleness_max"]["value"] >= 0).all()
    with sqlite3.connect(tmp_path / "results.sqlite") as db:
        prov = db.execute("SELECT provenance FROM runs LIMIT 1").fetchone()[0]
    assert "compute_profile_s" in prov and "buffer_bytes" in prov


@pytest.mark.data
def test_modules_are_profiled_once_per_study_and_the_profile_is_reused(tmp_path, cifar10):
    spec = load_study("delay_sweep")
    small = {"epochs": 1, "train_per_class": 10, "test_per_class": 5, "slowdown": [1.0, 2.0], "buffer": 1, "cluster": "profile"}
    first = run_study(spec, profile="smoke", overrides=small, out=tmp_path, show_progress=False)
    with sqlite3.connect(tmp_path / "results.sqlite") as db:
        (profile,) = [json.loads(s) for (s,) in db.execute("SELECT seconds FROM profiles")]
    assert len(profile) == 6 and all(t > 0 for t in profile)
    assert all(r.compute_time == tuple(profile) for r in first.runs)  # written into every run's config
    again = run_study(spec, profile="smoke", overrides=small, out=tmp_path, show_progress=False)
    assert again.executed == [] and [r.key() for r in again.runs] == [r.key() for r in first.runs]
    prov = first.store.provenance(first.runs[0].key())["compute_profile"]
    assert prov["seconds"] == profile and prov["machine"] and "load" in prov  # where and under what load it was measured
    assert "PROFILED ON THIS MACHINE" in (tmp_path / "final_accuracy.tex").read_text()


def _no_profiling(*args, **kwargs):
    raise AssertionError("a module profile was taken")


@pytest.mark.data
def test_a_study_on_a_balanced_cluster_never_profiles(tmp_path, cifar10, monkeypatch):
    import dglsim.study.profiles
    import dglsim.train.simulated

    monkeypatch.setattr(dglsim.study.profiles, "profile_modules", _no_profiling)
    monkeypatch.setattr(dglsim.train.simulated, "profile_modules", _no_profiling)
    spec = load_study("delay_sweep")
    small = {"epochs": 1, "train_per_class": 10, "test_per_class": 5, "slowdown": [1.0, 2.0], "buffer": 1}
    outcome = run_study(spec, profile="smoke", overrides=small, out=tmp_path / "balanced", show_progress=False)
    assert all(r.cluster == "balanced" and r.compute_time is None for r in outcome.runs)
    assert "balanced cluster (10 ms per update on every module)" in (tmp_path / "balanced" / "final_accuracy.tex").read_text()
    # negative control: the same study on a profile cluster does reach the profiler
    with pytest.raises(AssertionError, match="a module profile was taken"):
        run_study(spec, profile="smoke", overrides=small | {"cluster": "profile"}, out=tmp_path / "profile", show_progress=False)


@pytest.mark.data
def test_simulated_runs_with_the_same_config_give_the_same_results(cifar10):
    from dglsim.study.execute import execute_run

    cfg = RunConfig(method="simulated", pipeline="async", k=3, width=4, head="linear", train_per_class=10, test_per_class=5,
                    epochs=1, batch_size=20, slowdown=2.0, buffer=2, compute_jitter="lognormal", cluster="given", compute_time=(0.01, 0.02, 0.01), evals=2)
    assert execute_run(cfg)["rows"] == execute_run(cfg)["rows"]


def test_several_grids_run_the_union_of_their_products():
    spec = load_study("quant_sweep")
    runs = spec.runs("paper", {})  # the full grid (the other profiles run grids of their own)
    settings = {(r.pipeline, r.quant, r.quant_bits if r.quant in ("uniform", "stochastic") else None,
                 r.codes if r.quant == "vq" else None, r.groups, r.gamma, r.stages, r.codebook_init, r.code_format, r.seed) for r in runs}
    assert len(settings) == len(runs)  # no run twice
    vq_sync_k = sorted(r.codes for r in runs if r.quant == "vq" and r.pipeline == "sync" and r.groups == 1 and r.gamma == 0.99
                       and r.stages == 1 and r.codebook_init == "random" and r.seed == 0)
    assert vq_sync_k == [16, 64, 256, 1024, 4096]
    assert {r.groups for r in runs if r.quant == "vq"} == {1, 2, 4}
    assert not any(r.pipeline == "async" and (r.groups > 1 or r.gamma != 0.99 or r.stages > 1) for r in runs)  # those grids are sync only
    assert len(runs) == (2 + 4 + 1 + 10 + 4 + 1 + 2 + 2) * 3  # 3 seeds


def test_a_profile_with_grids_of_its_own_runs_those():
    spec = load_study("quant_sweep")

    def settings(profile):
        return {(r.quant, r.codes if r.quant == "vq" else None, r.stages, r.codebook_init, r.code_format, r.codebook_update) for r in spec.runs(profile, {})}

    paired = {("none", None, 1, "random", "bytes", "full"), ("uniform", None, 1, "random", "bytes", "full"),
              ("vq", 256, 1, "random", "bytes", "full"), ("vq", 256, 1, "kmeans++", "bytes", "full"),
              ("vq", 32, 2, "kmeans++", "packed", "delta"), ("vq", 64, 2, "kmeans++", "packed", "delta")}
    assert settings("default") == paired and len(spec.runs("default", {})) == 6 * 3
    long = {("none", None, 1, "random", "bytes", "full"), ("uniform", None, 1, "random", "bytes", "full"), ("vq", 256, 1, "kmeans++", "bytes", "delta"),
            ("vq", 32, 2, "kmeans++", "packed", "delta"), ("vq", 64, 2, "kmeans++", "packed", "delta"), ("vq", 64, 2, "kmeans++", "zstd", "delta")}
    assert settings("long") == long and len(spec.runs("long", {})) == 6 * 3
    assert {r.pipeline for p in ("default", "long") for r in spec.runs(p, {})} == {"sync"}
    # a profile's scalar setting still replaces the axis in its own grids (smoke: 16 codes)
    assert {r.codes for r in spec.runs("smoke", {}) if r.quant == "vq"} == {16}


def test_quantization_needs_the_simulated_links():
    with pytest.raises(InvalidArgument, match="'quant' of RunConfig must be 'none' unless method is 'simulated'.*got 'vq' with method 'dgl'"):
        RunConfig(method="dgl", quant="vq")
    with pytest.raises(InvalidArgument, match="'codes' of RunConfig must be an int >= 2, got 1"):
        RunConfig(method="simulated", quant="vq", codes=1)


def test_theory_estimates_need_a_simulated_run():
    with pytest.raises(InvalidArgument, match="'theory' of RunConfig must be false unless method is 'simulated'.*got true with method 'dgl'"):
        RunConfig(method="dgl", theory=True)
    with pytest.raises(InvalidArgument, match="'theory' of RunConfig must be a bool, got 1"):
        RunConfig(method="simulated", theory=1)


def test_theory_runs_need_a_reference_longer_than_the_run():
    with pytest.raises(InvalidArgument, match="'reference_epochs' of RunConfig must be an int > epochs = 2 when theory is true.*got None"):
        RunConfig(method="simulated", theory=True, epochs=2)
    with pytest.raises(InvalidArgument, match="'reference_epochs' of RunConfig must be an int > epochs = 2 when theory is true.*got 2"):
        RunConfig(method="simulated", theory=True, epochs=2, reference_epochs=2)
    with pytest.raises(InvalidArgument, match="'reference_epochs' of RunConfig must be None unless theory is true.*got 6"):
        RunConfig(method="simulated", epochs=2, reference_epochs=6)
    plain = {"momentum": 0.0, "weight_decay": 0.0, "augment": False}
    assert RunConfig(method="simulated", theory=True, epochs=2, reference_epochs=6, **plain).reference_epochs == 6


@pytest.mark.parametrize("name,value", [("momentum", 0.9), ("weight_decay", 5e-4), ("augment", True)])
def test_theory_runs_refuse_what_plain_sgd_on_the_training_set_is_not(name, value):
    plain = {"momentum": 0.0, "weight_decay": 0.0, "augment": False} | {name: value}
    with pytest.raises(InvalidArgument, match=f"'{name}' of RunConfig must be .* when theory is true \\(the proofs analyze plain SGD on the training set's loss\\), got {value!r}"):
        RunConfig(method="simulated", theory=True, epochs=2, reference_epochs=6, **plain)


@pytest.mark.data
def test_theory_bounds_smoke_profile_writes_its_figures_and_tables(tmp_path, cifar10):
    assert main(["theory_bounds", "--profile", "smoke", "--out", str(tmp_path), "--no-progress"]) == 0
    for figure in ("bound_vs_measured", "input_distance", "quantization_bias"):
        assert (tmp_path / "figures" / f"{figure}.png").stat().st_size > 0
    tight = pd.read_csv(tmp_path / "tightness.csv")
    assert len(tight) == 6 * 3  # settings x modules
    assert (tight["global_tightness"] >= 1).all()  # the global form with the run's own estimates holds
    assert (tight["trajectory_tightness"] > 0).all() and (tight["trajectory_tightness"] < tight["global_tightness"]).all()
    stale = tight.dropna(subset=["staleness_bound"])
    assert set(stale["setting"]) == {"async", "async slowdown 4 on module 1", "async slowdown 4 on module 2"}
    assert (stale["staleness_max"] <= stale["staleness_bound"]).all()
    quantized = tight.dropna(subset=["q_bias"])
    assert (quantized["module"] > 0).all() and (quantized["q_bias"] <= quantized["q_bias_bound"]).all()
    verdicts = pd.read_csv(tmp_path / "a4_verdicts.csv")
    assert len(verdicts) == 6 * 2 and set(verdicts["verdict"]) == {"unresolved"}  # one seed resolves nothing
    # a second seed (the first one's rows, its key renamed) gives the held-out bounds, the intervals and their figures
    results = pd.read_csv(tmp_path / "results.csv")
    twin = results.assign(key=results["key"] + "-twin", seed=results["seed"] + 1)
    out = tmp_path / "twin"
    written = theory_bounds_report(pd.concat([results, twin], ignore_index=True), out, "two seeds")
    assert out / "figures" / "tightness.png" in written and out / "figures" / "a4_decay.png" in written
    tight = pd.read_csv(out / "tightness.csv")
    # identical seeds: the held-out bounds are the run's own
    assert np.allclose(tight["held_out_global_tightness"], tight["global_tightness"]) and np.allclose(tight["held_out_trajectory_tightness"], tight["trajectory_tightness"])


@pytest.mark.data
@pytest.mark.slow
def test_sim_vs_real_smoke_profile_writes_predicted_against_measured(tmp_path, cifar10):
    assert main(["sim_vs_real", "--profile", "smoke", "--out", str(tmp_path), "--no-progress"]) == 0
    assert (tmp_path / "figures" / "predicted_vs_measured.png").stat().st_size > 0
    pairs = pd.read_csv(tmp_path / "predictions.csv")
    assert set(pairs["setting"]) == {"K=2 sync", "K=2 async", "K=2 sync, VQ 16 codes", "K=2 async, VQ 16 codes"}
    assert {"epoch_wallclock_s", "throughput", "utilization", "staleness_mean", "test_accuracy"} <= set(pairs["metric"])
    assert pairs[["real", "sim"]].notna().all().all() and (pairs.loc[pairs["metric"] == "epoch_wallclock_s", ["real", "sim"]] > 0).all().all()
    errors = pd.read_csv(tmp_path / "prediction_error.csv")
    assert (errors["mae"] >= 0).all() and set(errors["k"].astype(str)) == {"all", "2"}
    assert set(errors["quantity"]) == {"epoch_wallclock_s", "throughput", "utilization", "staleness_mean", "staleness_p90", "test_accuracy"}


def test_distributed_runs_refuse_paper_mode():
    with pytest.raises(InvalidArgument, match="'pipeline' of RunConfig must be 'sync' or 'async' with method 'distributed'.*got 'paper'"):
        RunConfig(method="distributed", pipeline="paper")


@pytest.mark.data
def test_quant_sweep_smoke_profile_writes_the_accuracy_against_bits_figure(tmp_path, cifar10):
    assert main(["quant_sweep", "--profile", "smoke", "--out", str(tmp_path), "--no-progress"]) == 0
    assert (tmp_path / "figures" / "accuracy_vs_bits.png").stat().st_size > 0
    runs = pd.read_csv(tmp_path / "runs.csv")
    float32 = runs[runs["quant"] == "none"].iloc[0]
    assert float32["bits_per_value"] == 32 and float32["compression"] == 1
    vq = runs[runs["quant"] == "vq"]
    assert (vq["compression"] > 1).all() and (vq["codebook_share"] > 0).all()
    assert (runs["buffer_MiB"] > 0).all() and (runs["wallclock_s"] > 0).all()
    # smaller items over the same slow links: the quantized runs finish sooner in simulated time
    assert (vq["wallclock_s"] < float32["wallclock_s"]).all()


@pytest.mark.parametrize(("settings", "match"), [
    ({"cluster": "balanced", "compute_time": (0.01, 0.02, 0.03)}, "must be None or one time with cluster 'balanced'"),
    ({"cluster": "given"}, "must be set with cluster 'given'"),
    ({"cluster": "profile", "compute_time": 0.01}, "must be None with cluster 'profile'"),
    ({"cluster": "a100", "compute_time": 0.01}, "must be None with device cluster 'a100'"),
    ({"cluster": ("a100", "v100")}, "must name k = 3 devices"),
    ({"link": "10gbe", "latency": 1e-3}, "'link' of RunConfig must be None when 'latency' or 'bandwidth' is set"),
    ({"normalization": "authors", "dataset": "imagenette", "input_shape": (3, 64, 64)}, "'normalization' of RunConfig must be 'dataset' unless dataset is 'cifar10'"),
])
def test_cluster_settings_that_contradict_each_other_are_rejected(settings, match):
    with pytest.raises(InvalidArgument, match=match):
        RunConfig(**({"method": "simulated", "k": 3} | settings))


def test_declared_clusters_give_per_module_times_without_measuring():
    from dglsim.models import build_network
    from dglsim.recipe.cluster import cluster_times

    cfg = RunConfig(method="simulated", arch="authors_cnn", k=3, width=8, head="linear")
    net = build_network(cfg.network_spec(), seed=0)
    assert cluster_times(cfg, net).seconds == (0.01,) * 3
    v100, h100 = (cluster_times(dataclasses.replace(cfg, cluster=c), net).seconds for c in ("v100", "h100"))
    assert all(h < v for h, v in zip(h100, v100))  # the faster device, module for module
    slow = cluster_times(dataclasses.replace(cfg, cluster="v100", efficiency=0.25), net).seconds
    assert slow == pytest.approx(tuple(2 * t for t in v100))  # efficiency 0.5 -> 0.25 doubles every time


def test_the_authors_buffer_study_says_all_of_their_settings():
    runs = load_study("authors_buffer").runs("default", {})
    paper = {(r.buffer, round(1 - 1 / r.slowdown, 6)) for r in runs if r.pipeline == "paper"}
    assert paper == {(5, 0.0), (5, 0.1), (1, 0.2), (5, 0.5)}
    assert {r.seed for r in runs} == {0, 1, 2} and sum(r.pipeline == "sync" for r in runs) == 3
    r = runs[0]
    assert (r.arch, r.k, r.width, r.head, r.policy, r.ensemble, r.subset, r.normalization, r.reset_on_decay, r.slowed) == \
        ("authors_buffer_cnn", 4, 32, "authors_mlp", "authors", "logits", "first", "authors", True, 2)
    assert (r.train_per_class, r.epochs, r.lr_decay_every, r.cluster) == (500, 6, 3, "balanced")
