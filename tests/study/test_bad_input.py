"""Bad study input: one line naming the key or file, exit code 2, no traceback, nothing run.
Every case is a row; the study files are written into a temporary studies folder."""

import os

import pytest

from dglsim.errors import InvalidArgument
from dglsim.study import load_study
from dglsim.study.cli import main
from dglsim.study.store import ResultsStore, driver_lock

GOOD = """
description = "tiny"
seeds = 1
[grid]
method = ["dgl"]
[base]
arch = "authors_cnn"
k = 2
width = 4
head = "linear"
train_per_class = 2
test_per_class = 2
epochs = 1
batch_size = 10
"""


@pytest.fixture
def studies(tmp_path, monkeypatch):
    folder = tmp_path / "studies"
    folder.mkdir()
    (folder / "tiny.toml").write_text(GOOD)
    monkeypatch.setenv("DGLSIM_STUDIES", str(folder))
    return folder


CASES = [
    # (study file text or None for GOOD, extra CLI arguments, text the one-line error must hold)
    ("description = [unclosed", [], "must be readable TOML"),
    ("base = 3", [], "'base' in"),
    ("grid = 3", [], "'grid' in"),
    (GOOD, ["--set", "slowdown=[]"], "'slowdown' must be a non-empty list"),
    (GOOD + "[profiles.default]\ngrid = 3\n", [], "'grid' of profile 'default' in"),
    (GOOD + "[[profiles.default.grid]]\nmethod = []\n", [], "grid axis 'method' in 'grid' of profile 'default'"),
    (GOOD + "[profiles.longer]\nepochs = 2\n", [], "profile 'longer' in"),
    (GOOD.replace('method = ["dgl"]', 'method = ["simulated"]'), ["--set", "quant=vq", "--set", "codebook_init=kmeans", "--set", "lloyd_iters=2"],
     "'codebook_init' of RunConfig must be one of"),
    (GOOD.replace('method = ["dgl"]', 'method = ["simulated"]'), ["--set", "quant=vq", "--set", "lloyd_iters=2"], "'lloyd_iters' of VQConfig must be 0 unless init is 'kmeans++'"),
    (GOOD.replace('method = ["dgl"]', 'method = ["dgl"]\nk = [2, 99]'), [], "'k' of NetworkSpec must be <= the 6 units"),
    (GOOD, ["--set", "batch_size=50"], "'batch_size' of RunConfig must be <= the 20 training images"),
    (GOOD.replace('method = ["dgl"]', 'method = ["simulated"]'), ["--set", "quant=vq", "--set", "groups=3"], "'groups' of RunConfig must divide the 8 channels of link 0"),
    (GOOD, ["--set", "input_shape=[3, 64, 64]"], "'input_shape' of RunConfig must match the cifar10 images"),
    (GOOD, ["--set", "classes=5"], "'classes' of RunConfig must be the 10 classes of cifar10, got 5"),
    (GOOD, ["--set", "seed=1", "--seeds", "2"], "'seed' and '--seeds' must not both be given"),
    (GOOD, ["--set", "seed=[1, 1]"], "'seed' must be an int >= 0 or a list of distinct ones"),
    # scheduled methods (dglsim.schedule)
    (GOOD.replace('method = ["dgl"]', 'method = ["scheduled"]'), [], "'schedule' of RunConfig must name a plan of"),
    (GOOD.replace('method = ["dgl"]', 'method = ["scheduled"]'), ["--set", "schedule=pipedream"], "'schedule' of RunConfig must be None or one of"),
    (GOOD.replace('method = ["dgl"]', 'method = ["scheduled"]'), ["--set", "schedule=ddg", "--set", "micro_batches=2"],
     "'micro_batches' of RunConfig must be 1 unless schedule is one of ['gpipe', '1f1b']"),
    (GOOD.replace('method = ["dgl"]', 'method = ["scheduled"]'), ["--set", "schedule=gpipe", "--set", "micro_batches=11"],
     "'micro_batches' of RunConfig must be at most batch_size = 10"),
    (GOOD, ["--set", "schedule=gpipe"], "'schedule' of RunConfig must name a plan of"),
    (GOOD + "[report]\ntarget = 0.5\n", [], "its report takes"),
    (GOOD + "[report]\ntarget_accuracy = {paper = 0.5}\n", [], "report setting 'target_accuracy'"),
    # declared limits on work (dglsim.limits)
    (GOOD, ["--set", "evals=100000000"], "'evals' of RunConfig must be <= 1,000 evaluations"),
    (GOOD.replace('method = ["dgl"]', 'method = ["simulated"]'), ["--set", "pipeline=paper", "--set", "slowdown=1e-300"], "global steps"),
    (GOOD, ["--set", "train_per_class=5000", "--set", "batch_size=49000", "--set", "width=512"], "must fit in half the available memory"),
]


@pytest.mark.parametrize(("text", "args", "message"), CASES)
def test_bad_input_is_one_line_exit_2_and_runs_nothing(studies, tmp_path, capsys, text, args, message):
    (studies / "tiny.toml").write_text(text)
    out = tmp_path / "out"
    assert main(["tiny", "--out", str(out), "--no-progress", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (out / "results.sqlite").exists() or not ResultsStore(out / "results.sqlite").done_keys()  # nothing ran


def test_out_must_be_a_folder(studies, tmp_path, capsys):
    target = tmp_path / "a_file"
    target.write_text("x")
    assert main(["tiny", "--out", str(target)]) == 2
    assert "'--out' must be a folder" in capsys.readouterr().err


def test_list_names_the_broken_file_and_still_lists_the_others(studies, capsys):
    (studies / "broken.toml").write_text("base = [")
    assert main(["list"]) == 2
    out = capsys.readouterr().out
    assert "tiny" in out and "broken" in out and "must be readable TOML" in out


def test_a_second_driver_on_the_same_out_is_refused_with_the_holders_pid(studies, tmp_path, capsys):
    with driver_lock(tmp_path / "out"):
        assert main(["tiny", "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    assert f"in use by another study driver (PID {os.getpid()} holds the lock {str(tmp_path / 'out' / '.lock')!r})" in capsys.readouterr().err


def test_set_seed_runs_exactly_those_seeds(studies):
    spec = load_study("tiny")
    assert [r.seed for r in spec.runs("default", {"seed": 7})] == [7]
    assert [r.seed for r in spec.runs("default", {"seed": [3, 5]})] == [3, 5]
    assert [r.seed for r in spec.runs("default", {}, seeds=2)] == [0, 1]


def test_the_store_records_the_settings_that_change_results_and_refuses_others(tmp_path):
    store = ResultsStore(tmp_path / "results.sqlite")
    first = {"torch_threads": 2, "devices": ["cpu"], "dtype": "float32", "deterministic_algorithms": False}
    assert store.execution(first) is None and store.execution(first) is None  # recorded, then matched
    assert store.execution(first | {"torch_threads": 1}) == first  # another thread count: the stored settings come back


@pytest.mark.data
def test_a_resume_with_another_jobs_count_is_refused(studies, tmp_path, capsys, cifar10):
    import torch

    # one job runs with the process's threads, two jobs with half the cores each: make them differ
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // 2) + 1)
    out = tmp_path / "out"
    assert main(["tiny", "--out", str(out), "--no-progress"]) == 0
    assert main(["tiny", "--out", str(out), "--no-progress", "--jobs", "2"]) == 2
    assert "computed under other settings that change results (torch_threads" in capsys.readouterr().err
    assert main(["tiny", "--out", str(out), "--no-progress"]) == 0  # the same settings resume


def test_allow_large_lifts_the_limits(studies, monkeypatch):
    from dglsim.errors import InvalidArgument
    from dglsim.limits import ENV_VAR
    from dglsim.study import RunConfig

    with pytest.raises(InvalidArgument, match="pass --allow-large"):
        RunConfig(evals=2000)
    monkeypatch.setenv(ENV_VAR, "1")
    assert RunConfig(evals=2000).evals == 2000


def test_a_loaded_study_keeps_its_name():
    assert load_study("delay_sweep").name == "delay_sweep"  # not the name of one of its profiles


@pytest.mark.data
def test_a_simulated_run_that_stops_short_under_max_reuse_says_so(studies, tmp_path, capsys, cifar10):
    """Module 1 three times slower, a buffer of one item used at most once: the producer
    overwrites items module 1 never took, so module 1 runs out once module 0 is done. The run is
    a result (the real ranks end the same way), stored with its updates and announced."""
    from dglsim.recipe.rows import stopped_short

    (studies / "tiny.toml").write_text(GOOD.replace('method = ["dgl"]', 'method = ["simulated"]'))
    out = tmp_path / "out"
    args = ["--set", "pipeline=async", "--set", "buffer=1", "--set", "max_reuse=1", "--set", "slowdown=3.0", "--set", "epochs=3"]
    assert main(["tiny", "--out", str(out), "--no-progress", *args]) == 0
    rows = ResultsStore(out / "results.sqlite").results()[["metric", "module", "value"]].to_dict("records")
    short = stopped_short(rows)
    assert list(short) == [1] and short[1] < 3 * 2  # 3 epochs of 2 batches planned
    assert f"stopped short of its 3 epochs on module(s) 1 ({int(short[1])} updates)" in capsys.readouterr().err


def test_a_renamed_key_is_read_with_a_warning_and_keeps_the_store_key(studies):
    """`delay` became `compute_jitter`: the old name gives the same run, keyed as before the rename."""
    import hashlib
    import json
    import warnings

    from dglsim.recipe.config import ADDED_KEYS
    from dglsim.study import RunConfig

    with pytest.warns(FutureWarning, match="'delay' in test is now 'compute_jitter'"):
        old = RunConfig.from_dict({"method": "simulated", "delay": "lognormal"}, where="test")
    new = RunConfig(method="simulated", compute_jitter="lognormal")
    assert old == new and old.key() == new.key()
    # keys added later are left out of the digest at their default, so the key is the one stored before them
    former = {("delay" if k == "compute_jitter" else k): v for k, v in new.as_dict().items() if k not in ADDED_KEYS}
    assert new.key() == hashlib.sha256(json.dumps(former, sort_keys=True).encode()).hexdigest()[:20]
    assert RunConfig(method="scheduled", schedule="gpipe").key() != RunConfig(method="scheduled", schedule="1f1b").key()
    with pytest.warns(FutureWarning):
        assert [r.compute_jitter for r in load_study("tiny").runs("default", {"delay": "straggler"})] == ["straggler"]
    with warnings.catch_warnings(), pytest.raises(InvalidArgument, match="'delay' and 'compute_jitter' in test must not both be given"):
        warnings.simplefilter("ignore")
        RunConfig.from_dict({"delay": "lognormal", "compute_jitter": "constant"}, where="test")
