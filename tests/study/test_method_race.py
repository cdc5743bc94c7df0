"""method_race: every method on one declared cluster. The report's time to target, intervals and
paired differences on results built by hand; the smoke profile end to end on CIFAR-10."""

import numpy as np
import pandas as pd
import pytest

from dglsim.study import load_study, run_study
from dglsim.study.race_reports import method_race_report, time_to_target
from dglsim.study.reports import write_report


def test_time_to_target_is_the_first_evaluation_at_the_target():
    curves = pd.DataFrame({"key": ["a"] * 4 + ["b"] * 3, "time": [1.0, 2.0, 3.0, 4.0, 1.0, 2.0, 3.0],
                           "value": [0.1, 0.39, 0.41, 0.35, 0.1, 0.2, 0.3]})
    out = time_to_target(curves, 0.4).set_index("key")
    assert out.loc["a", "time_to_target"] == 3.0 and out.loc["a", "final_accuracy"] == 0.35 and out.loc["a", "interval"] == 1.0
    assert np.isnan(out.loc["b", "time_to_target"])  # never reached: no time, not the last one


def _results(seeds=3):
    """DGL async and GPipe at two slowdowns; GPipe's accuracy is DGL's + 0.05 at every
    evaluation of the same seed, and it reaches 0.5 one evaluation later; memory and idle fixed."""
    rows = []
    for slowdown in (1.0, 2.0):
        for seed in range(seeds):
            base = 0.1 * seed
            for name, config in (("dgl", {"method": "simulated", "pipeline": "async", "schedule": None, "micro_batches": 1}),
                                 ("gpipe", {"method": "scheduled", "pipeline": "async", "schedule": "gpipe", "micro_batches": 4})):
                key = f"{name}-{slowdown}-{seed}"
                common = {"key": key, "k": 2, "slowdown": slowdown, "seed": seed, **config}
                shift, delay = (0.05, 1.0) if name == "gpipe" else (0.0, 0.0)
                for e in range(1, 6):
                    time = slowdown * e
                    value = min(0.1 * e + base + shift, 0.9) if time < delay + 3 * slowdown else 0.5 + base + shift
                    rows.append(common | {"metric": "test_accuracy", "module": 1, "time": time, "value": value})
                rows += [common | {"metric": "peak_memory_bytes", "module": j, "value": (j + 1) * 2**20 * (2 if name == "gpipe" else 1)} for j in range(2)]
                rows += [common | {"metric": "idle_fraction", "module": j, "value": 0.25 if name == "gpipe" else 0.0} for j in range(2)]
                rows.append(common | {"metric": "makespan", "value": 5.0 * slowdown})
    return pd.DataFrame(rows)


def test_report_tables_and_paired_differences(tmp_path):
    written = method_race_report(_results(), tmp_path, "caption", target_accuracy=0.5)
    for name in ("race.csv", "race.tex", "paired_difference.csv", "figures/accuracy_vs_wallclock.png", "figures/time_memory_idle.png"):
        assert tmp_path / name in written and (tmp_path / name).exists(), name
    race = pd.read_csv(tmp_path / "race.csv").set_index(["label", "slowdown"])
    assert race.loc[("GPipe m=4", 1.0), "peak_memory_MiB_mean"] == 4.0  # the most loaded device
    assert race.loc[("GPipe m=4", 2.0), "idle_fraction_mean"] == 0.25
    assert race.loc[("DGL async", 1.0), "seeds"] == 3
    paired = pd.read_csv(tmp_path / "paired_difference.csv")
    acc = paired[(paired["value"] == "final_accuracy") & (paired["label"] == "GPipe m=4")]
    assert np.allclose(acc["mean"], 0.05) and np.allclose(acc["half_width"], 0.0, atol=1e-12) and (acc["n"] == 3).all()
    assert "GPipe m=4 & 1 &" in (tmp_path / "race.tex").read_text()


def test_report_takes_its_target_from_the_study(tmp_path):
    """The [report] table reaches the report: a target no run reaches leaves no time to target."""
    write_report("method_race", _results(), tmp_path, "caption", {"target_accuracy": 0.99})
    race = pd.read_csv(tmp_path / "race.csv")
    assert race["time_to_target_mean"].isna().all() and (race["reached_target"] == 0).all()


@pytest.mark.slow
def test_smoke_profile_runs_every_method(tmp_path, cifar10):
    spec = load_study("method_race")
    outcome = run_study(spec, profile="smoke", out=tmp_path, show_progress=False)
    assert not outcome.failed
    results = pd.read_csv(tmp_path / "results.csv")
    labels = set(pd.read_csv(tmp_path / "race.csv")["label"])
    assert labels == {"DGL sync", "DGL async", "GPipe m=4", "1F1B m=4", "DDG", "features replay", "DNI", "cDNI", "sequential greedy"}
    peaks = results[results["metric"] == "peak_memory_bytes"]
    assert (peaks["value"] > 0).all() and peaks.groupby("key").size().eq(spec.runs("smoke", {})[0].k).all()
    for name in ("figures/accuracy_vs_wallclock.png", "figures/time_memory_idle.png", "race.tex"):
        assert (tmp_path / name).exists(), name
