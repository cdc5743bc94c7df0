"""A study driver killed with --jobs 2 leaves nothing behind: its pool workers and the
multiprocessing resource tracker are gone within seconds, and what it stored is intact."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid

import pytest

from ..processes import TAG_VAR, tagged

pytestmark = [pytest.mark.data, pytest.mark.slow]

STUDY = """
description = "long enough to be killed while both workers train"
seeds = 4
[grid]
method = ["dgl"]
[base]
arch = "authors_cnn"
k = 2
width = 16
head = "linear"
train_per_class = 100
test_per_class = 10
epochs = 20
batch_size = 20
"""


def test_a_killed_driver_leaves_no_worker_and_an_intact_store(tmp_path, cifar10):
    (tmp_path / "studies").mkdir()
    (tmp_path / "studies" / "tiny.toml").write_text(STUDY)
    tag = uuid.uuid4().hex
    env = dict(os.environ, DGLSIM_STUDIES=str(tmp_path / "studies"), PYTHONWARNINGS="ignore", **{TAG_VAR: tag})
    driver = subprocess.Popen([sys.executable, "-m", "dglsim.study", "tiny", "--out", str(tmp_path / "out"), "--jobs", "2", "--no-progress"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(tagged(tag)) < 4:  # the driver, the resource tracker and two workers
        assert time.monotonic() < deadline and driver.poll() is None, "the pool never started"
        time.sleep(0.2)
    time.sleep(2)  # the workers are importing and training
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    deadline = time.monotonic() + 10
    while tagged(tag) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert tagged(tag) == {}
    with sqlite3.connect(tmp_path / "out" / "results.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
