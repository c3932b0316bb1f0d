"""Fixtures for the aggregator's black-box tests: a fake Carbon sink and the real daemon.

The daemon runs as `python -m aggregator` on free loopback ports and is stopped by PID.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
WAIT = 10.0  # upper bound of every wait, in seconds


def free_port(kind: int = socket.SOCK_STREAM, family: int = socket.AF_INET) -> int:
    host = "::1" if family == socket.AF_INET6 else "127.0.0.1"
    with socket.socket(family, kind) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_until(check: Callable[[], object], timeout: float = WAIT, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Sink:
    """A fake Carbon: accepts plaintext connections and records every line."""

    def __init__(self, port: int = 0) -> None:
        self.server = socket.create_server(("127.0.0.1", port))
        self.port = self.server.getsockname()[1]
        self.lines: list[str] = []
        self.connections: list[socket.socket] = []
        self.lock = threading.Lock()
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.connections.append(conn)
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        buffered = b""
        with conn:
            while data := conn.recv(65536):
                buffered += data
                *complete, buffered = buffered.split(b"\n")
                with self.lock:
                    self.lines += [line.decode() for line in complete]

    def close(self) -> None:
        """Stop listening and drop every connection, as a Carbon that goes away would."""
        self.closed = True
        with contextlib.suppress(OSError):  # wakes the accepting thread, which holds the port
            self.server.shutdown(socket.SHUT_RDWR)
        self.server.close()
        for conn in self.connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def flushes(self) -> list[list[tuple[str, str, int]]]:
        """Complete flushes, each a list of (path, value, ts); a flush ends with flush_length."""
        with self.lock:
            lines = list(self.lines)
        out, current = [], []
        for line in lines:
            path, value, ts = line.split(" ")
            current.append((path, value, int(ts)))
            if "graphiteStats.flush_length" in path:
                out.append(current)
                current = []
        return out

    def wait_flush(self, check: Callable[[dict[str, str]], bool], after: int = 0) -> dict:
        """The first complete flush (from index `after`) whose {path: value} passes `check`."""

        def find():
            for flush in self.flushes()[after:]:
                values = {path: value for path, value, _ in flush}
                if check(values):
                    return values
            return None

        return wait_until(find, what="a matching flush")

    def next_flush(self) -> int:
        """Wait for one more complete flush; return the count, for `wait_flush(after=...)`."""
        seen = len(self.flushes())
        wait_until(lambda: len(self.flushes()) > seen, what="the next flush")
        return seen + 1


@dataclass
class Daemon:
    process: subprocess.Popen
    port: int
    mgmt_port: int
    config_path: Path
    log_path: Path
    sink: Sink
    senders: list[socket.socket] = field(default_factory=list)

    def send(self, *datagrams: bytes) -> None:
        """Send datagrams from one socket (so they reach one receiver, in order)."""
        if not self.senders:
            self.senders.append(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        for d in datagrams:
            self.senders[0].sendto(d, ("127.0.0.1", self.port))

    def send_fresh(self, *datagrams: bytes) -> int:
        """Wait for a flush, then send at once: everything lands in one interval."""
        after = self.sink.next_flush()
        self.send(*datagrams)
        return after

    def mgmt(self, command: str) -> str:
        with socket.create_connection(("127.0.0.1", self.mgmt_port), timeout=WAIT) as s:
            s.sendall(command.encode() + b"\n")
            s.shutdown(socket.SHUT_WR)
            chunks = []
            while data := s.recv(65536):
                chunks.append(data)
        return b"".join(chunks).decode()

    def http(self, path: str = "/health") -> tuple[int, str]:
        with socket.create_connection(("127.0.0.1", self.mgmt_port), timeout=WAIT) as s:
            s.sendall(f"GET {path} HTTP/1.0\r\n\r\n".encode())
            chunks = []
            while data := s.recv(65536):
                chunks.append(data)
        head, _, body = b"".join(chunks).decode().partition("\r\n\r\n")
        return int(head.split(" ")[1]), body

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            os.kill(self.process.pid, sig)
        try:
            return self.process.wait(WAIT)
        except subprocess.TimeoutExpired:
            os.kill(self.process.pid, signal.SIGKILL)
            return self.process.wait(WAIT)


def run_aggregator(args: list[str], log_path: Path, **popen: Any) -> subprocess.Popen:
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "aggregator", *args],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            **popen,
        )


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink()
    yield s
    s.close()


@pytest.fixture
def start_daemon(tmp_path: Path, sink: Sink) -> Iterator[Callable[..., Daemon]]:
    """start_daemon(config: dict, flush=0.2, ..., **popen) -> a running Daemon writing to
    `sink`; `popen`: more subprocess.Popen arguments."""
    started: list[Daemon] = []

    def start(
        config: dict | None = None,
        flush: float = 0.2,
        wait: bool = True,
        graphite_port: int | None = None,
        **popen: Any,
    ) -> Daemon:
        index = len(started)
        conf = {"spool_dir": str(tmp_path / f"spool{index}"), "log_level": "debug"}
        conf.update(config or {})
        path = tmp_path / f"config{index}.json"
        path.write_text(json.dumps(conf))
        port, mgmt = free_port(socket.SOCK_DGRAM), free_port()
        log_path = tmp_path / f"daemon{index}.log"
        process = run_aggregator(
            ["--config", str(path), "--port", str(port), "--mgmt-port", str(mgmt),
             "--graphite-port", str(graphite_port or sink.port), "--flush-interval", str(flush)],
            log_path,
            **popen,
        )  # fmt: skip
        daemon = Daemon(process, port, mgmt, path, log_path, sink)
        started.append(daemon)
        if wait:
            wait_until(lambda: _answers(daemon), what=f"the daemon to start: {log_path}")
        return daemon

    yield start
    for daemon in started:
        daemon.stop()
        for s in daemon.senders:
            s.close()


def _answers(daemon: Daemon) -> bool:
    if daemon.process.poll() is not None:
        raise AssertionError(f"daemon exited: {daemon.log()}")
    try:
        return daemon.http()[0] == 200
    except OSError:
        return False
