"""Bad input to python -m dglsim.ranks: one line naming the key or file, exit code 2, no rank started."""

import pytest

from dglsim.ranks.cli import main

GOOD = 'dataset = "cifar10"\narch = "authors_cnn"\nk = 2\nwidth = 4\nhead = "linear"\npipeline = "sync"\n'


@pytest.mark.parametrize(("name", "text", "message"), [
    ("bad.toml", "k = [", "'config' of dglsim.ranks must be readable TOML"),
    ("bad.json", "{not json", "'config' of dglsim.ranks must be readable JSON"),
    ("list.json", "[1, 2]", "must hold a table of run settings, got list"),
    ("dist3.toml", GOOD + "dist = 3\n", "'dist' in"),
    ("flight.toml", GOOD + "[dist]\nin_flight = true\n", "'in_flight' of the [dist] table must be an int >= 1, got True"),
    ("inf.toml", GOOD + "[dist]\ntimeout_s = inf\n", "'timeout_s' of the [dist] table must be a real in (0.0, 86400.0], got inf"),
    ("threads.toml", GOOD + "[dist]\nthreads = 0\n", "'threads' of the [dist] table must be an int >= 1, got 0"),
    ("cuda.toml", GOOD + 'device = "cuda"\n', "'device' of dglsim.ranks must be 'auto' or 'cpu' (ranks train on the CPU and talk over gloo), got 'cuda'"),
])
def test_bad_configs_are_one_line_errors(tmp_path, capsys, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    assert main([str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()  # no rank ran


def test_a_data_root_that_is_a_file_is_named(tmp_path, monkeypatch):
    from dglsim.data import data_root
    from dglsim.errors import DataError

    target = tmp_path / "not_a_folder"
    target.write_text("x")
    monkeypatch.setenv("DGLSIM_DATA", str(target))
    with pytest.raises(DataError, match=r"\$DGLSIM_DATA must be a folder .* got the file"):
        data_root()


def test_a_folder_with_an_earlier_runs_outputs_is_refused_unless_overwrite(tmp_path, capsys):
    """A failed rerun beside a complete earlier run would look like a success: refuse to start."""
    from dglsim.ranks.cli import prepare_out

    config, out = tmp_path / "run.toml", tmp_path / "out"
    config.write_text(GOOD)
    out.mkdir()
    for name in ("results.json", "trace.csv", "state.pt", "rank0.trace.csv", "notes.txt"):
        (out / name).write_text("x")
    assert main([str(config), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "'--out' of dglsim.ranks must not hold an earlier run's outputs, got 4 in" in err and "pass --overwrite" in err
    prepare_out(out, overwrite=True)  # what every rank does with --overwrite, before the process group forms
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]  # only the run's outputs go
    prepare_out(out, overwrite=False)  # now it is fresh


def test_a_data_root_that_is_a_file_is_a_one_line_error_of_the_study_cli(tmp_path, monkeypatch, capsys):
    from dglsim.study.cli import main as study_main

    target = tmp_path / "not_a_folder"
    target.write_text("x")
    monkeypatch.setenv("DGLSIM_DATA", str(target))
    assert study_main(["delay_sweep", "--profile", "smoke", "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "$DGLSIM_DATA must be a folder" in err and "Traceback" not in err
