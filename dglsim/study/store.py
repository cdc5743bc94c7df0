"""The results store: an embedded SQLite database keyed by each run's full config.

The study driver is its only writer (workers hand outcomes back: dglsim.study.launch.inbox).
A run is written in one transaction when it finishes, so an interrupted study loses only the
runs in progress, and a rerun of the same command skips every run already stored. A run that
failed is kept with its traceback in `failures` until it is stored.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    key         TEXT PRIMARY KEY,  -- RunConfig.key(): digest of the full config
    study       TEXT NOT NULL,
    profile     TEXT NOT NULL,
    config      TEXT NOT NULL,     -- JSON, as given
    provenance  TEXT NOT NULL,     -- JSON: versions, git revision, device, allocator, ...
    rows        TEXT NOT NULL,     -- JSON list of tidy rows {epoch, module, metric, value}
    wall_s      REAL NOT NULL,
    finished_at REAL NOT NULL      -- unix time
);
CREATE TABLE IF NOT EXISTS profiles (
    key         TEXT PRIMARY KEY,  -- digest of the network, batch size and device profiled
    seconds     TEXT NOT NULL,     -- JSON list: base seconds per update of each module
    network     TEXT NOT NULL,     -- JSON: what was profiled
    measured_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS failures (
    key         TEXT PRIMARY KEY,  -- a run that raised or whose worker was lost; removed when it is stored
    study       TEXT NOT NULL,
    profile     TEXT NOT NULL,
    config      TEXT NOT NULL,     -- JSON
    error       TEXT NOT NULL,     -- the traceback, or what the launcher said
    host        TEXT,
    launcher    TEXT,
    failed_at   REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    name        TEXT PRIMARY KEY,  -- "execution": the settings every stored run was computed under
    value       TEXT NOT NULL      -- JSON
)
"""


@contextlib.contextmanager
def driver_lock(folder: Path) -> Iterator[None]:
    """Hold `folder`/.lock while a study driver writes there: the store has one writer. A second
    driver on the same folder gets an InvalidArgument naming the holder's PID. The OS releases
    the lock when its holder exits, however it exits, so a killed driver never leaves it stale."""
    from dglsim.errors import InvalidArgument

    folder.mkdir(parents=True, exist_ok=True)
    handle = open(folder / ".lock", "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise InvalidArgument(f"'--out' {str(folder)!r} is in use by another study driver (PID {holder} holds the lock {str(folder / '.lock')!r}); "
                                  "wait for it to finish or choose another --out") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()


class ResultsStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=60)

    def done_keys(self) -> set[str]:
        with self._connect() as db:
            return {k for (k,) in db.execute("SELECT key FROM runs")}

    def put(self, key: str, *, study: str, profile: str, config: dict, provenance: dict, rows: list[dict], wall_s: float) -> bool:
        """Store a finished run and forget any failure of it, in one transaction. False (and
        nothing changed) when the key is already stored: the first result of a run stands."""
        with self._connect() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (key, study, profile, json.dumps(config, sort_keys=True), json.dumps(provenance, sort_keys=True), json.dumps(rows), wall_s, time.time()),
            )
            db.execute("DELETE FROM failures WHERE key = ?", (key,))
        return cursor.rowcount == 1

    def put_failure(self, key: str, *, study: str, profile: str, config: dict, error: str, host: str | None, launcher: str | None) -> None:
        with self._connect() as db:
            db.execute("INSERT OR REPLACE INTO failures VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (key, study, profile, json.dumps(config, sort_keys=True), error, host, launcher, time.time()))

    def failures(self, keys: list[str] | None = None) -> pd.DataFrame:
        """key, study, profile, error, host, launcher, failed_at and the config's fields of each failed run."""
        with self._connect() as db:
            stored = list(db.execute("SELECT key, study, profile, config, error, host, launcher, failed_at FROM failures ORDER BY failed_at"))
        wanted = None if keys is None else set(keys)
        return pd.DataFrame.from_records([
            {"key": k, "study": s, "profile": p, "error": e, "host": h, "launcher": lnch, "failed_at": f, **json.loads(c)}
            for k, s, p, c, e, h, lnch, f in stored if wanted is None or k in wanted
        ])

    def revisions(self, keys: list[str]) -> dict[str, int]:
        """How many of the stored runs among `keys` each git revision computed."""
        wanted, counts = set(keys), {}
        with self._connect() as db:
            for key, prov in db.execute("SELECT key, provenance FROM runs"):
                if key in wanted:
                    rev = json.loads(prov).get("git_revision", "unknown")
                    counts[rev] = counts.get(rev, 0) + 1
        return counts

    def runs(self, study: str | None = None) -> pd.DataFrame:
        """One row per stored run: key, study, profile, wall_s, finished_at and the config's fields."""
        query, args = "SELECT key, study, profile, config, wall_s, finished_at FROM runs", ()
        if study is not None:
            query, args = query + " WHERE study = ?", (study,)
        with self._connect() as db:
            records = [
                {"key": k, "study": s, "profile": p, "wall_s": w, "finished_at": f, **json.loads(c)}
                for k, s, p, c, w, f in db.execute(query, args)
            ]
        return pd.DataFrame.from_records(records)

    def results(self, keys: list[str] | None = None) -> pd.DataFrame:
        """Tidy results: one observation per row, each with its run's config columns."""
        with self._connect() as db:
            stored = list(db.execute("SELECT key, config, rows FROM runs"))
        wanted = None if keys is None else set(keys)
        records: list[dict[str, Any]] = []
        for key, config, rows in stored:
            if wanted is not None and key not in wanted:
                continue
            cfg = json.loads(config)
            records += [{"key": key, **cfg, **row} for row in json.loads(rows)]
        return pd.DataFrame.from_records(records)

    def get_profile(self, key: str) -> tuple[list[float], dict] | None:
        """(seconds, what was profiled and where) of a stored profile, or None."""
        with self._connect() as db:
            row = db.execute("SELECT seconds, network FROM profiles WHERE key = ?", (key,)).fetchone()
        return None if row is None else (json.loads(row[0]), json.loads(row[1]))

    def put_profile(self, key: str, seconds: list[float], network: dict) -> None:
        with self._connect() as db:
            db.execute("INSERT INTO profiles VALUES (?, ?, ?, ?)", (key, json.dumps(seconds), json.dumps(network, sort_keys=True), time.time()))

    def execution(self, settings: dict) -> dict | None:
        """Record `settings` (what changes results beyond the config: threads, device, dtype,
        deterministic algorithms) if the store has none yet; return the stored ones when they
        differ, else None."""
        with self._connect() as db:
            row = db.execute("SELECT value FROM meta WHERE name = 'execution'").fetchone()
            if row is None:
                db.execute("INSERT INTO meta VALUES ('execution', ?)", (json.dumps(settings, sort_keys=True),))
                return None
        stored = json.loads(row[0])
        return None if stored == settings else stored

    def provenance(self, key: str) -> dict:
        with self._connect() as db:
            (prov,) = db.execute("SELECT provenance FROM runs WHERE key = ?", (key,)).fetchone()
        return json.loads(prov)
