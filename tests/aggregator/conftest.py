"""Fixtures for the aggregator's black-box tests: a fake Carbon sink and the real daemon.

The daemon runs as `python -m aggregator` on free loopback ports and is stopped by PID.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from support.net import WAIT, free_port, wait_until
from support.net import CarbonSink as Sink

__all__ = ["Sink", "free_port", "wait_until"]  # for the tests that import them from here

ROOT = Path(__file__).resolve().parents[2]


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
