"""One labeller: a RunConfig and a results row of the same run get the same names."""

import pandas as pd
import pytest

from dglsim.recipe.config import RunConfig
from dglsim.study import labels

CASES = [
    (dict(method="simulated", pipeline="sync"), "sync", "float32"),
    (dict(method="simulated", pipeline="async", slowdown=2.0, quant="vq", codes=16), "async slowdown 2, VQ 16 codes", "VQ 16 codes"),
    (dict(method="simulated", pipeline="async", quant="vq", codes=256, groups=2, gamma=0.9), "async, VQ 256 codes N=2 γ=0.9", "VQ 256 codes N=2 γ=0.9"),
    (dict(method="simulated", pipeline="sync", quant="stochastic", quant_bits=16), "sync, stochastic rounding 16-bit", "stochastic rounding 16-bit"),
    (dict(method="simulated", pipeline="sync", quant="vq", codes=64, stages=2, codebook_init="kmeans++", lloyd_iters=10, code_format="packed", codebook_update="delta"),
     "sync, RVQ 2×64 codes k-means++ bit-packed int8 deltas", "RVQ 2×64 codes k-means++ bit-packed int8 deltas"),
]


@pytest.mark.parametrize(("settings", "setting", "quantizer"), CASES)
def test_a_config_and_its_results_row_are_named_alike(settings, setting, quantizer):
    cfg = RunConfig(**settings)
    row = pd.Series(cfg.as_dict())
    for run in (cfg, row):
        assert labels.setting(run) == setting
        assert labels.quantizer(run) == quantizer
    assert labels.setting(row, k=True) == f"K={cfg.k} {setting}"


def test_the_slowed_module_and_curve_names():
    cfg = RunConfig(method="simulated", pipeline="async", slowdown=3.0, slowed=2, k=3, quant="uniform")
    assert labels.pipeline(cfg, slowed=True) == "async slowdown 3 on module 2"
    assert labels.quantizer(cfg, size=False) == "uniform"
    assert labels.progress(cfg) == "async slowdown 3, uniform 8-bit M=5 least_used seed 0"


def test_rows_stored_before_residual_vq_are_named_as_they_ran():
    """A results row of a store written before `stages`, `codebook_init`, `code_format` and
    `codebook_update` existed ran with their defaults, and is named so."""
    row = pd.Series(RunConfig(method="simulated", quant="vq", codes=16).as_dict()).drop(["stages", "codebook_init", "code_format", "codebook_update"])
    assert labels.quantizer(row) == "VQ 16 codes"
    assert labels.quantizer(pd.Series(RunConfig(method="simulated", quant="vq", stages=3).as_dict()), size=False) == "RVQ 3 stages"
