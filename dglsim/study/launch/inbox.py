"""Where workers leave what they did, for the driver, the one writer of the results store.

A worker writes each run's outcome (its result, or its failure with the traceback) to
`OUT/.inbox/KEY.json` before it returns, atomically: a temp file in the same folder, then a
rename, so a file there is always whole. The driver commits the outcome to SQLite and only then
removes the file. A driver killed between the two finds the file when it restarts and commits
it then: a finished run is never lost and never rerun. While a run is in progress its worker
keeps `OUT/.running/KEY.json` (host and PID), which the driver counts for its progress display,
and every start of a run is appended to `OUT/.attempts/KEY.jsonl` (host, PID, launcher, time):
the audit of retries, requeues and restarts that each stored run's provenance counts.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Iterator

__all__ = ["atomic_write", "write_outcome", "outcomes", "remove_outcome", "mark_running", "attempts", "clear_running", "running_count", "clear_stale_running"]


def atomic_write(path: Path, text: str) -> None:
    """Write `text` to `path` whole or not at all: a temp file in the same folder, then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{socket.gethostname()}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_outcome(out: Path, outcome: dict) -> None:
    atomic_write(Path(out) / ".inbox" / f"{outcome['key']}.json", json.dumps(outcome))


def outcomes(out: Path) -> Iterator[dict]:
    """Every whole outcome file a worker left (temp files of writes in progress are skipped)."""
    folder = Path(out) / ".inbox"
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else ():
        yield json.loads(path.read_text())


def remove_outcome(out: Path, key: str) -> None:
    (Path(out) / ".inbox" / f"{key}.json").unlink(missing_ok=True)


def mark_running(out: Path, key: str, launcher: str) -> int:
    """Mark the run started here; returns how many times it has been started, this one included."""
    start = {"host": socket.gethostname(), "pid": os.getpid(), "launcher": launcher, "time": time.time()}
    atomic_write(Path(out) / ".running" / f"{key}.json", json.dumps(start))
    log = Path(out) / ".attempts" / f"{key}.jsonl"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as f:  # one short line per start: appends of this size do not interleave
        f.write(json.dumps(start) + "\n")
    return len(attempts(out, key))


def attempts(out: Path, key: str) -> list[dict]:
    """Every start of the run `key` so far, oldest first."""
    log = Path(out) / ".attempts" / f"{key}.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()] if log.exists() else []


def clear_running(out: Path, key: str) -> None:
    (Path(out) / ".running" / f"{key}.json").unlink(missing_ok=True)


def running_count(out: Path) -> int:
    folder = Path(out) / ".running"
    return sum(1 for _ in folder.glob("*.json")) if folder.is_dir() else 0


def clear_stale_running(out: Path) -> None:
    """Forget the markers of an earlier driver's workers that are gone. A marker stays only when
    its process is alive on this host: a job that outlives its driver (Slurm) keeps counting as
    running; a worker of another host cannot be asked, so its marker goes."""
    folder = Path(out) / ".running"
    here = socket.gethostname()
    for path in folder.glob("*.json") if folder.is_dir() else ():
        try:
            marker = json.loads(path.read_text())
            alive = marker["host"] == here and _alive(int(marker["pid"]))
        except (OSError, ValueError, KeyError):
            alive = False
        if not alive:
            path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, and someone else's
        return True
    return True
