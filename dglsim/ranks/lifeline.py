"""How a rank learns, at once, that it must stop, and what it keeps when it does.

A rank stops on the first of:
- a stop signal (SIGTERM, SIGINT, SIGHUP): from torchrun or the launcher stopping the run, from
  the user, or from the kernel when the rank's parent dies (dglsim.lifetime);
- a peer's death: every pair of ranks holds a plain TCP connection besides gloo's, and a
  process's sockets close when it dies, however it dies; a peer that closes its connection
  without having said it is done has died (gloo alone would notice only at the timeout);
- an error of its own (`Lifeline.fail`).

Either way the rank writes what it did so far (its partial trace, `rank{r}.trace.csv`) and the
cause (`rank{r}.error.json`: the cause, the rank it blames when it failed because of a peer, the
time), prints one line and exits, without waiting for gloo: a peer may be blocked in it.

Signals are seen by a watcher thread through the interpreter's wakeup file descriptor: the main
thread may be blocked inside gloo, where a Python signal handler would not run until it returns.

torchrun names as root cause the failure it saw first, to the second, and checks every 0.1 s; a
rank that stops because of a peer would exit in the same instant as the dead peer is seen. Under
torchrun such a rank therefore exits only when torchrun stops it, or after LINGER_S, so that the
rank that died first is the one torchrun sees first. (dglsim's own launcher reads the blame from
the error files and needs no such wait.)
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import struct
import threading
import time
from pathlib import Path
from typing import NoReturn

from dglsim.lifetime import die_with_parent
from dglsim.sim.trace import Trace

__all__ = ["Lifeline", "write_trace", "error_path", "trace_path", "PARENT_ENV"]

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
PARENT_ENV = "DGLSIM_LAUNCHER_PID"  # set by the launcher: a rank whose launcher is already gone stops at once
_DONE = b"D"  # a peer that has done all its work says so before its sockets close
LINGER_S = 3.0  # 30 of torchrun's monitor intervals


def trace_path(out: Path, rank: int) -> Path:
    return out / f"rank{rank}.trace.csv"


def error_path(out: Path, rank: int) -> Path:
    return out / f"rank{rank}.error.json"


def write_trace(path: Path, rows: list[tuple]) -> None:
    """The trace rows of one rank, written whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    Trace(rows).to_csv(tmp)
    tmp.replace(path)


class Lifeline:
    """The stop paths of one rank. Call `watch_signals` from the main thread before the work,
    `connect` once the process group exists, `keep` with the rows the rank records, `done` when
    all its work is done, and `fail` on an error."""

    def __init__(self, rank: int, world: int, out: Path) -> None:
        self.rank, self.world, self.out = rank, world, out
        self.rows: list[tuple] = []
        self._lock = threading.Lock()
        self._selector = selectors.DefaultSelector()
        self._peers: dict[socket.socket, int] = {}
        self._finished: set[int] = set()  # peers that said they are done
        self._wake_r, self._wake_w = os.pipe()
        self._thread: threading.Thread | None = None
        self._told_to_stop = threading.Event()  # a stop signal came while the rank was already stopping

    # -- set-up -------------------------------------------------------------------------------

    def watch_signals(self) -> None:
        """Route the stop signals to the watcher thread, and ask for SIGTERM when the parent dies
    (main thread only)."""
        os.set_blocking(self._wake_w, False)
        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        for sig in STOP_SIGNALS:  # a handler, so the C level writes the wakeup byte; the watcher acts
            signal.signal(sig, lambda *_: None)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._start()
        parent = os.environ.get(PARENT_ENV)  # torchrun does not say: its ranks rely on the request alone
        die_with_parent(int(parent) if parent else None)  # SIGTERM when the launcher dies: the path above

    def connect(self, timeout_s: float) -> None:
        """Open one liveness connection to every other rank (collective: every rank calls it)."""
        import torch.distributed as dist

        server = socket.create_server(("", 0), backlog=self.world)
        server.settimeout(timeout_s)
        addresses: list = [None] * self.world
        dist.all_gather_object(addresses, (_reachable_host(), server.getsockname()[1]))
        try:
            for peer in range(self.rank + 1, self.world):  # connect up, accept from below: no waiting on each other
                conn = socket.create_connection(addresses[peer], timeout=timeout_s)
                conn.sendall(struct.pack("!i", self.rank))
                self._watch(conn, peer)
            for _ in range(self.rank):
                conn, _ = server.accept()
                conn.settimeout(timeout_s)
                self._watch(conn, struct.unpack("!i", _read_exactly(conn, 4))[0])
        except OSError as exc:
            self.fail(f"could not open the liveness connections to the other ranks within {timeout_s:g} s: {exc}")
        finally:
            server.close()

    def keep(self, rows: list[tuple]) -> None:
        """The rows this rank records: written as its partial trace if it stops early."""
        self.rows = rows

    # -- the end ------------------------------------------------------------------------------

    def done(self) -> None:
        """All of this rank's work is done: from now on, its closed connections are not a death."""
        for conn in list(self._peers):
            try:
                conn.sendall(_DONE)
            except OSError:
                pass  # that peer is gone; its own death is its peers' concern

    def fail(self, cause: str, *, blames: int | None = None, code: int = 1) -> NoReturn:
        """Keep the partial trace and the cause, say it in one line, and exit at once."""
        self._lock.acquire()  # the first stop wins; any other waits here for the exit
        try:
            write_trace(trace_path(self.out, self.rank), list(self.rows))
            record = {"rank": self.rank, "cause": cause, "blames": blames, "time": time.time(), "exit_code": code}
            error_path(self.out, self.rank).write_text(json.dumps(record))
            kept = f"; kept its partial trace ({len(self.rows)} events) in {trace_path(self.out, self.rank)}"
        except OSError as exc:
            kept = f"; could not write its partial trace: {exc}"
        line = cause if cause.startswith(f"rank {self.rank}:") else f"rank {self.rank}: {cause}"
        os.write(2, f"error: {line}{kept}\n".encode())  # not print: another thread may hold stderr's lock
        if blames is not None and "TORCHELASTIC_RUN_ID" in os.environ:  # let torchrun see the root first
            self._told_to_stop.wait(LINGER_S)
        os._exit(code)

    # -- the watcher ----------------------------------------------------------------------------

    def _watch(self, conn: socket.socket, peer: int) -> None:
        conn.setblocking(False)
        self._peers[conn] = peer
        self._selector.register(conn, selectors.EVENT_READ, peer)

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"rank{self.rank}-lifeline", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            for key, _ in self._selector.select(timeout=0.5):
                if key.data is None:
                    self._on_signal()
                else:
                    self._on_peer(key.fileobj, key.data)

    def _on_signal(self) -> None:
        data = os.read(self._wake_r, 64)
        sig = signal.Signals(data[0])
        if sig not in STOP_SIGNALS:
            return
        if self._lock.locked():  # already stopping (and lingering): the launcher wants it gone now
            self._told_to_stop.set()
            return
        self.fail(f"stopped by {sig.name}", code=128 + int(sig))

    def _on_peer(self, conn: socket.socket, peer: int) -> None:
        try:
            data = conn.recv(64)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if _DONE in data:
            self._finished.add(peer)
        if not data:
            self._selector.unregister(conn)
            conn.close()
            if peer not in self._finished:
                self.fail(f"rank {peer} died before finishing (its connection closed)", blames=peer)


def _reachable_host() -> str:
    """This machine's address as the rendezvous host sees it (the interface that routes there)."""
    master = os.environ.get("MASTER_ADDR", "127.0.0.1")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect((master, 9))  # no packet is sent: this only picks the route
            return s.getsockname()[0]
        except OSError:
            return "127.0.0.1"


def _read_exactly(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise ConnectionError("a rank closed its liveness connection during the handshake")
        data += chunk
    return data
