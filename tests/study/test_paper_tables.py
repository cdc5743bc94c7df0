"""paper_tables: the seed paper's comparisons beside the published values. The report on results
built by hand (final accuracy, published values and their source, paired differences against
DGL); the study's settings (the published ones in the paper profile); the smoke profile end to end."""

import numpy as np
import pandas as pd
import pytest

from dglsim.study import load_study, run_study
from dglsim.study.paper_reports import PUBLISHED, paper_tables_report

METHODS = {  # label -> (config, accuracy offset from DGL of the same seed)
    "dgl": ({"method": "dgl", "schedule": None}, 0.0),
    "backprop": ({"method": "backprop", "schedule": None}, -0.01),
    "DNI": ({"method": "scheduled", "schedule": "dni"}, -0.2),
}


def _results(seeds=3):
    """Two comparisons; each seed moves every method alike (+0.05 per seed), so paired
    differences are exact and their interval has zero width; an earlier evaluation is lower."""
    rows = []
    for arch, depth, k in (("dni_cnn", None, 3), ("resnet_cifar", 110, 2)):
        for seed in range(seeds):
            for name, (config, offset) in METHODS.items():
                common = {"key": f"{arch}-{name}-{seed}", "arch": arch, "depth": depth, "k": k, "seed": seed, "micro_batches": 1, "pipeline": "async", **config}
                for epoch, value in ((0, 0.1), (1, 0.6 + 0.05 * seed + offset)):
                    rows.append(common | {"metric": "test_accuracy", "module": k - 1, "epoch": epoch, "value": value})
                rows.append(common | {"metric": "test_accuracy", "module": 0, "epoch": 1, "value": 0.99})  # not the last module: not reported
    return pd.DataFrame(rows)


def test_report_puts_published_values_and_paired_differences_beside_ours(tmp_path):
    written = paper_tables_report(_results(), tmp_path, "caption")
    for name in ("paper_tables.csv", "paper_tables.tex", "paired_difference.csv", "figures/paper_tables.png"):
        assert tmp_path / name in written and (tmp_path / name).exists(), name
    table = pd.read_csv(tmp_path / "paper_tables.csv").set_index(["comparison", "label"])
    dni, resnet = "DNI comparison: 3-layer CNN, K=3", "DDG/FR comparison: ResNet-110, K=2"
    # the last module at the last evaluation: mean of 0.6, 0.65, 0.7 plus the method's offset
    assert table.loc[(dni, "dgl"), "mean"] == pytest.approx(0.65) and table.loc[(dni, "DNI"), "mean"] == pytest.approx(0.45)
    assert table.loc[(dni, "dgl"), "half_width"] > 0.05  # seeds differ: the unpaired interval is wide
    assert table.loc[(dni, "DNI"), "published"] == PUBLISHED[("dni_cnn", 3)][1]["DNI"]
    assert table.loc[(dni, "cDNI"), "published"] == PUBLISHED[("dni_cnn", 3)][1]["cDNI"] and np.isnan(table.loc[(dni, "cDNI"), "mean"])  # published, not run
    assert np.isnan(table.loc[(resnet, "dgl"), "published"])  # nothing on record for this comparison
    # paired by seed: the seed effect cancels, so the difference is exact and its interval closes
    assert table.loc[(resnet, "backprop"), "minus_dgl_mean"] == pytest.approx(-0.01)
    assert table.loc[(resnet, "backprop"), "minus_dgl_half_width"] == pytest.approx(0.0, abs=1e-12)
    assert table.loc[(dni, "DNI"), "minus_dgl_n"] == 3
    tex = (tmp_path / "paper_tables.tex").read_text()
    assert "dni_comparisons" in tex and "DNI comparison: 3-layer CNN, K=3 & DNI & 45.0 $\\pm$" in tex


def test_pairing_uses_the_seed_not_the_row_order(tmp_path):
    """Negative control: a DGL reference whose seeds are relabelled breaks the pairing, and the
    paired interval opens up."""
    results = _results()
    dgl = results["method"] == "dgl"
    results.loc[dgl, "seed"] = results.loc[dgl, "seed"].map({0: 2, 1: 0, 2: 1})
    paper_tables_report(results, tmp_path, "caption")
    table = pd.read_csv(tmp_path / "paper_tables.csv").set_index(["comparison", "label"])
    assert table.loc[("DDG/FR comparison: ResNet-110, K=2", "backprop"), "minus_dgl_half_width"] > 0.05


def test_paper_profile_runs_the_published_settings():
    runs = load_study("paper_tables").runs("paper", {})
    dni = [r for r in runs if r.arch == "dni_cnn"]
    resnet = [r for r in runs if r.arch == "resnet_cifar"]
    assert {(r.method, r.schedule) for r in dni} == {("dgl", None), ("backprop", None), ("scheduled", "dni"), ("scheduled", "cdni")}
    assert all(r.optimizer == "adam" and r.lr == 3e-5 and r.batch_size == 256 and r.epochs == 1500 and r.k == 3 and r.lr_decay == 1.0 for r in dni)
    assert {(r.method, r.schedule) for r in resnet} == {("dgl", None), ("backprop", None), ("scheduled", "ddg"), ("scheduled", "features_replay")}
    assert {r.k for r in resnet} == {2, 3, 4} and all(r.depth == 110 and r.epochs == 300 and r.lr_milestones == (149, 224) for r in resnet)
    assert all(r.train_per_class is None for r in runs) and {r.seed for r in runs} == {0, 1, 2}


@pytest.mark.slow
def test_smoke_profile_writes_the_tables(tmp_path, cifar10):
    outcome = run_study(load_study("paper_tables"), profile="smoke", out=tmp_path, show_progress=False)
    assert not outcome.failed
    table = pd.read_csv(tmp_path / "paper_tables.csv")
    ran = table.dropna(subset=["mean"])
    assert set(ran["label"]) == {"dgl", "backprop", "DNI", "cDNI", "DDG"} and (ran["n"] == 1).all()
    assert ran["mean"].between(0, 1).all()
    assert (tmp_path / "figures" / "paper_tables.png").exists()
