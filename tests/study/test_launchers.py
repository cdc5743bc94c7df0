"""Launchers and the one writer: failures recorded and retried, outcomes left in the inbox
committed once, one code revision per report, clear errors; and the same results, value for
value, from the local pool, a real local Ray cluster and submitit's local executor, with a
killed worker, a killed driver and a preempted job."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from dglsim.errors import InvalidArgument
from dglsim.study import load_study, run_study
from dglsim.study.launch import LauncherOptions
from dglsim.study.launch.work import RunJob, run_job

pytestmark = pytest.mark.data

# Epoch-loop runs (their epoch checkpoints are what a requeued job resumes from) beside runs in
# simulated time (which restart), two seeds each: a few seconds per run.
TINY = """
description = "launcher tests"
seeds = 2
[grid]
method = ["dgl", "simulated"]
[base]
dataset = "cifar10"
arch = "authors_cnn"
k = 2
width = 8
head = "linear"
train_per_class = 20
test_per_class = 10
epochs = 3
batch_size = 50
"""

# Long enough (tens of seconds per run) to be killed or signalled while it trains.
LONG = TINY.replace('method = ["dgl", "simulated"]', 'method = ["dgl"]').replace("train_per_class = 20", "train_per_class = 100").replace("epochs = 3", "epochs = 5")


@pytest.fixture
def studies(tmp_path, monkeypatch):
    folder = tmp_path / "studies"
    folder.mkdir()
    (folder / "tiny.toml").write_text(TINY)
    (folder / "long.toml").write_text(LONG)
    (folder / "longer.toml").write_text(LONG.replace("epochs = 5", "epochs = 12"))
    monkeypatch.setenv("DGLSIM_STUDIES", str(folder))
    return folder


def _rows(out: Path) -> dict[str, list]:
    with sqlite3.connect(out / "results.sqlite") as db:
        return {key: json.loads(rows) for key, rows in db.execute("SELECT key, rows FROM runs")}


def _stored(out: Path) -> dict[str, float]:
    with sqlite3.connect(out / "results.sqlite") as db:
        return dict(db.execute("SELECT key, finished_at FROM runs"))


def _never_redone(out: Path) -> bool:
    """No run was started again after it was stored (the attempts log against finished_at)."""
    from dglsim.study.launch.inbox import attempts

    return all(all(a["time"] <= finished for a in attempts(out, key)) for key, finished in _stored(out).items())


def _provenance(out: Path) -> dict[str, dict]:
    with sqlite3.connect(out / "results.sqlite") as db:
        return {key: json.loads(p) for key, p in db.execute("SELECT key, provenance FROM runs")}


def _reference(folder: Path, name: str) -> Path:
    """The study `name` with the local launcher and 2 jobs (1 thread each on 2 cores), the
    numbers every other launcher must give."""
    (folder / f"{name}.toml").write_text({"tiny": TINY, "long": LONG}[name])
    old = os.environ.get("DGLSIM_STUDIES")
    os.environ["DGLSIM_STUDIES"] = str(folder)
    try:
        run_study(load_study(name), jobs=2, out=folder / "out", show_progress=False)
    finally:
        os.environ.pop("DGLSIM_STUDIES") if old is None else os.environ.__setitem__("DGLSIM_STUDIES", old)
    return folder / "out"


@pytest.fixture(scope="module")
def local_tiny(tmp_path_factory, cifar10):
    return _reference(tmp_path_factory.mktemp("tiny"), "tiny")


@pytest.fixture(scope="module")
def local_long(tmp_path_factory, cifar10):
    return _reference(tmp_path_factory.mktemp("long"), "long")


# --- the driver, with the local launcher --------------------------------------------------


def test_a_failed_run_is_recorded_and_the_study_goes_on(studies, tmp_path, monkeypatch, capsys, cifar10):
    import dglsim.study.execute as execute

    real = execute.execute_run

    def fails_for_seed_1(cfg, **kwargs):
        if cfg.seed == 1 and cfg.method == "dgl":
            raise FloatingPointError("loss is nan at step 3")
        return real(cfg, **kwargs)

    monkeypatch.setattr(execute, "execute_run", fails_for_seed_1)
    out = tmp_path / "out"
    outcome = run_study(load_study("tiny"), out=out, show_progress=True)
    assert len(outcome.runs) == 4 and len(outcome.executed) == 3 and len(outcome.failed) == 1
    bar = [line for line in capsys.readouterr().err.replace("\r", "\n").splitlines() if line.startswith("runs:")][-1]
    assert "4/4" in bar and "running 0, failed 1, pending 0" in bar  # the progress bar's last state counts the failure
    failures = (out / "failures.csv").read_text()
    assert "FloatingPointError: loss is nan at step 3" in failures and "Traceback" in failures
    assert (out / "results.csv").exists()  # the report covers the three stored runs

    again = run_study(load_study("tiny"), out=out, show_progress=False)  # a failure is not rerun unasked
    assert again.executed == [] and again.failed == outcome.failed

    monkeypatch.setattr(execute, "execute_run", real)
    retried = run_study(load_study("tiny"), out=out, retry_failed=True, show_progress=False)
    assert retried.executed == outcome.failed and retried.failed == []
    assert not (out / "failures.csv").exists() and len(_stored(out)) == 4


def test_an_outcome_left_in_the_inbox_is_committed_and_not_rerun(studies, tmp_path, cifar10):
    """A worker finished and wrote its outcome, and the driver died before committing it: the
    next driver commits that outcome and runs only the others."""
    spec = load_study("tiny")
    out = tmp_path / "out"
    first = spec.runs("default", {})[0]
    left = run_job(RunJob(first, "tiny", "default", str(out), threads=1, launcher="local"))
    assert (out / ".inbox" / f"{first.key()}.json").exists()
    outcome = run_study(spec, out=out, jobs=2, show_progress=False)
    assert first.key() not in outcome.executed and len(outcome.executed) == 3
    assert _rows(out)[first.key()] == left["result"]["rows"]
    assert not list((out / ".inbox").glob("*.json"))  # committed, then removed


def test_a_report_never_mixes_code_revisions(studies, tmp_path, cifar10):
    spec = load_study("tiny")
    out = tmp_path / "out"
    run_study(spec, out=out, overrides={"method": "dgl"}, seeds=1, show_progress=False)
    with sqlite3.connect(out / "results.sqlite") as db:  # as if an older checkout had computed it
        (key, prov), = db.execute("SELECT key, provenance FROM runs")
        db.execute("UPDATE runs SET provenance = ? WHERE key = ?", (json.dumps(json.loads(prov) | {"git_revision": "0123abc"}), key))
    with pytest.raises(InvalidArgument, match=r"would mix code revisions: 0123abc \(1 stored run\(s\)\).*--allow-mixed-revisions"):
        run_study(spec, out=out, overrides={"method": "dgl"}, seeds=2, show_progress=False)
    outcome = run_study(spec, out=out, overrides={"method": "dgl"}, seeds=2, allow_mixed_revisions=True, show_progress=False)
    assert len(outcome.executed) == 1


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_bad_input_found_by_a_worker_stops_the_study_with_its_message(studies, tmp_path, monkeypatch, capsys, jobs):
    """A data folder that is a file is no failure of a run: the study ends with the one-line
    error (exit 2), whether the run was in the driver's process or in a pool worker, and no run
    is recorded as failed."""
    from dglsim.study.cli import main

    target = tmp_path / "not_a_folder"
    target.write_text("x")
    monkeypatch.setenv("DGLSIM_DATA", str(target))
    assert main(["tiny", "--jobs", jobs, "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "$DGLSIM_DATA must be a folder" in err and "Traceback" not in err
    assert not (tmp_path / "out" / "failures.csv").exists()


def test_launcher_errors_name_what_to_do(studies, tmp_path, monkeypatch):
    spec = load_study("tiny")
    with pytest.raises(InvalidArgument, match=r"'--launcher' must be one of \['local', 'ray', 'slurm'\], got 'dask'"):
        run_study(spec, out=tmp_path / "a", launcher="dask", show_progress=False)
    monkeypatch.setitem(sys.modules, "submitit", None)  # as on an install without the extra
    with pytest.raises(InvalidArgument, match=r"needs the 'submitit' package.*pip install 'dglsim\[slurm\]'"):
        run_study(spec, out=tmp_path / "b", launcher="slurm", show_progress=False)
    with pytest.raises(InvalidArgument, match=r"'partiton' is not a \[launcher\] option"):
        run_study(spec, out=tmp_path / "c", launcher_options={"partiton": "gpu"}, show_progress=False)
    with pytest.raises(InvalidArgument, match=r"'time_min' of \[launcher\] must be an int >= 1, got 0"):
        LauncherOptions(time_min=0)


@pytest.mark.slow
def test_a_killed_pool_worker_is_rerun(studies, tmp_path, local_long):
    """SIGKILL to a local pool worker mid-run: its run (and the one beside it, which lost its
    pool) is rerun in a fresh pool; the study ends with the reference's numbers."""
    out = tmp_path / "out"
    killed = _kill_first_worker_in_thread(out, signal.SIGKILL)
    outcome = run_study(load_study("long"), jobs=2, out=out, show_progress=False)
    assert killed and outcome.failed == []
    assert _provenance(out)[killed[0]]["attempt"] == 2  # started again after the kill
    assert _rows(out) == _rows(local_long)


def _kill_first_worker_in_thread(out: Path, sig: int, wait_for=None) -> list:
    """Send `sig` to the first worker seen running a run (its .running marker), from a thread;
    the list it returns holds the run's key once sent."""
    sent: list = []

    def watch():
        deadline = time.monotonic() + 120
        while not sent and time.monotonic() < deadline:
            for marker in sorted((out / ".running").glob("*.json")) if (out / ".running").is_dir() else ():
                if wait_for is not None and not wait_for(marker.stem):
                    continue
                try:
                    os.kill(json.loads(marker.read_text())["pid"], sig)
                except (OSError, ValueError, KeyError):
                    continue
                sent.append(marker.stem)
                return
            time.sleep(0.05)

    threading.Thread(target=watch, daemon=True).start()
    return sent


# --- Ray: a real local cluster ---------------------------------------------------------------


def _cli(*args, env=None, quiet=False):
    # A killed driver's output goes nowhere: jobs that outlive it would hold a pipe open.
    stream = subprocess.DEVNULL if quiet else subprocess.PIPE
    return subprocess.Popen([sys.executable, "-m", "dglsim.study", *args, "--no-progress"], env=env, stdout=stream, stderr=stream, text=True)


@pytest.mark.slow
def test_ray_gives_the_local_results_value_for_value(studies, tmp_path, local_tiny):
    pytest.importorskip("ray")
    out = tmp_path / "out"
    outcome = run_study(load_study("tiny"), jobs=2, out=out, launcher="ray", show_progress=False)
    assert len(outcome.executed) == 4 and outcome.failed == []
    assert _rows(out) == _rows(local_tiny)
    assert {p["launcher"] for p in _provenance(out).values()} == {"ray"}


@pytest.mark.slow
def test_a_killed_ray_worker_is_retried_and_the_study_completes(studies, tmp_path):
    pytest.importorskip("ray")
    out = tmp_path / "out"
    killed = _kill_first_worker_in_thread(out, signal.SIGKILL)
    outcome = run_study(load_study("long"), jobs=2, out=out, launcher="ray", show_progress=False)
    assert killed, "no worker was seen running"
    assert outcome.failed == [] and _provenance(out)[killed[0]]["attempt"] == 2  # Ray reran the killed task
    assert len(_stored(out)) == 2


@pytest.mark.slow
def test_a_killed_ray_driver_restarted_redoes_no_finished_run(studies, tmp_path):
    pytest.importorskip("ray")
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    driver = _cli("long", "--seeds", "3", "--jobs", "2", "--launcher", "ray", "--out", str(out), env=env, quiet=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and driver.poll() is None:
        if (out / "results.sqlite").exists() and _stored(out):
            break
        time.sleep(0.2)
    driver.send_signal(signal.SIGKILL)
    driver.wait(timeout=60)
    before = _stored(out)
    assert 1 <= len(before) < 3
    again = _cli("long", "--seeds", "3", "--jobs", "2", "--launcher", "ray", "--out", str(out), env=env)
    _, err = again.communicate(timeout=600)
    assert again.returncode == 0, err
    after = _stored(out)
    assert len(after) == 3 and all(after[k] == t for k, t in before.items())  # the finished runs are untouched
    assert _never_redone(out)


# --- Slurm, through submitit's local executor -------------------------------------------------


@pytest.mark.slow
def test_a_timed_out_slurm_job_is_requeued_and_resumes_from_its_epoch(studies, tmp_path, local_long):
    """Slurm's signal before a time limit (SIGUSR2) reaches a job once its run has saved an
    epoch. With a 1-minute limit submitit counts it as a timeout: it checkpoints and requeues the
    job, the run resumes after that epoch, and the study ends with every run stored once and the
    reference's numbers."""
    pytest.importorskip("submitit")
    out = tmp_path / "out"
    has_epoch = lambda key: (out / ".checkpoints" / f"{key}.pt").exists()  # noqa: E731
    signalled = _kill_first_worker_in_thread(out, signal.SIGUSR2, wait_for=has_epoch)
    outcome = run_study(load_study("long"), jobs=2, out=out, launcher="slurm", launcher_options={"cluster": "local", "time_min": 1}, show_progress=False)
    assert signalled, "no job was signalled"
    assert outcome.failed == [] and len(_stored(out)) == 2
    assert _provenance(out)[signalled[0]]["resumed_at_epoch"] >= 1 and _provenance(out)[signalled[0]]["attempt"] == 2
    assert _rows(out) == _rows(local_long)


@pytest.mark.slow
def test_a_timeout_beyond_max_requeues_fails_the_run(studies, tmp_path):
    """Negative control of the requeue: with max_requeues = 0 the same signal ends the job, and
    the run is recorded as failed, not lost and not silently rerun."""
    pytest.importorskip("submitit")
    out = tmp_path / "out"
    signalled = _kill_first_worker_in_thread(out, signal.SIGUSR2, wait_for=lambda key: (out / ".checkpoints" / f"{key}.pt").exists())
    outcome = run_study(load_study("long"), jobs=2, out=out, launcher="slurm", show_progress=False,
                        launcher_options={"cluster": "local", "time_min": 1, "max_requeues": 0})
    assert signalled and outcome.failed == signalled
    assert "timed-out too many times" in (out / "failures.csv").read_text()


@pytest.mark.slow
def test_a_restarted_slurm_driver_adopts_the_jobs_still_running(studies, tmp_path):
    """Slurm jobs outlive their driver. A driver killed while two jobs run, then restarted,
    waits for those jobs instead of submitting their runs again: every run is submitted once
    (the ledger) and stored once."""
    pytest.importorskip("submitit")
    out = tmp_path / "out"
    args = ("longer", "--seeds", "3", "--jobs", "2", "--launcher", "slurm", "--set", "launcher.cluster=local", "--out", str(out))
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    driver = _cli(*args, env=env, quiet=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and len(list((out / ".running").glob("*.json")) if (out / ".running").is_dir() else []) < 2:
        time.sleep(0.1)
    driver.send_signal(signal.SIGKILL)
    driver.wait(timeout=60)
    again = _cli(*args, env=env)
    _, err = again.communicate(timeout=600)
    assert again.returncode == 0, err
    assert "job(s) of an earlier driver are still pending or running" in err
    ledger = json.loads((out / ".slurm" / "submitted.json").read_text())
    assert len(ledger) == 3 and all(len(ids) == 1 for ids in ledger.values())
    assert len(_stored(out)) == 3 and _never_redone(out)
