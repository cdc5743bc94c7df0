"""Bad input to python -m dglsim.dist: one line naming the key or file, exit code 2, no rank started."""

import pytest

from dglsim.dist.cli import main

GOOD = 'dataset = "cifar10"\narch = "authors_cnn"\nk = 2\nwidth = 4\nhead = "linear"\npipeline = "sync"\n'


@pytest.mark.parametrize(("name", "text", "message"), [
    ("bad.toml", "k = [", "'config' of dglsim.dist must be readable TOML"),
    ("bad.json", "{not json", "'config' of dglsim.dist must be readable JSON"),
    ("list.json", "[1, 2]", "must hold a table of run settings, got list"),
    ("dist3.toml", GOOD + "dist = 3\n", "'dist' in"),
    ("flight.toml", GOOD + "[dist]\nin_flight = true\n", "'in_flight' of dglsim.dist must be an int >= 1, got True"),
    ("inf.toml", GOOD + "[dist]\ntimeout_s = inf\n", "'timeout_s' of dglsim.dist must be a real in (0.0, 86400.0], got inf"),
    ("threads.toml", GOOD + "[dist]\nthreads = 0\n", "'threads' of dglsim.dist must be an int >= 1, got 0"),
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
