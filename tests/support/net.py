"""Loopback helpers every test directory uses: free ports, bounded waits, and the two ends the
pipeline talks to in tests: a StatsD-side UDP receiver and a fake Carbon.

One copy of each, here (they were copied into five test directories before). Everything binds
127.0.0.1 (or ::1), every wait is bounded, and nothing outlives the test that closes it.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import pytest

WAIT = 10.0  # default upper bound of a wait, in seconds
T = TypeVar("T")


def free_port(kind: int | None = None, family: int = socket.AF_INET) -> int:
    """A loopback port nothing listens on (bound, then released): free for `kind`
    (SOCK_STREAM or SOCK_DGRAM), or for both when `kind` is None (the aggregator takes both)."""
    host = "::1" if family == socket.AF_INET6 else "127.0.0.1"
    kinds = (socket.SOCK_DGRAM, socket.SOCK_STREAM) if kind is None else (kind,)
    for _ in range(100):
        with socket.socket(family, kinds[0]) as first:
            first.bind((host, 0))
            port = first.getsockname()[1]
            if all(_bindable(family, other, host, port) for other in kinds[1:]):
                return port
    raise RuntimeError("no free port")


def _bindable(family: int, kind: int, host: str, port: int) -> bool:
    with socket.socket(family, kind) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def wait_until(
    check: Callable[[], T], timeout: float = WAIT, what: str = "condition", interval: float = 0.02
) -> T:
    """Poll `check` until it returns something truthy (returned), failing the test after
    `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class UdpSink:
    """A real StatsD-side socket, read when the test asks: what reaches it is what was sent,
    byte for byte."""

    def __init__(self, family: int = socket.AF_INET) -> None:
        host = "::1" if family == socket.AF_INET6 else "127.0.0.1"
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind((host, 0))
        self.port: int = self.sock.getsockname()[1]

    def recv(self, timeout: float = 2.0) -> bytes:
        """The next datagram; fails the test if none arrives within `timeout`."""
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(65535)
        except TimeoutError:
            pytest.fail(f"no datagram within {timeout}s")

    def recv_many(self, count: int, timeout: float = 5.0) -> list[bytes]:
        deadline = time.monotonic() + timeout
        received = []
        while len(received) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"{len(received)} of {count} datagrams within {timeout}s")
            received.append(self.recv(remaining))
        return received

    def pending(self) -> list[bytes]:
        """Every datagram already waiting (loopback delivers during the send call)."""
        self.sock.setblocking(False)
        received = []
        try:
            while True:
                received.append(self.sock.recv(65535))
        except BlockingIOError:
            return received
        finally:
            self.sock.setblocking(True)

    def close(self) -> None:
        self.sock.close()


class UdpCollector:
    """A StatsD-side socket read by a thread: for senders that flush in the background (an
    application's client), whose datagrams the test looks at afterwards."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.datagrams: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.datagrams.append(self.sock.recv(65535))
            except TimeoutError:
                continue

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()

    def lines(self) -> list[str]:
        return [line for d in self.datagrams for line in d.decode("ascii").split("\n")]


class CarbonSink:
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
            try:
                while data := conn.recv(65536):
                    buffered += data
                    *complete, buffered = buffered.split(b"\n")
                    with self.lock:
                        self.lines += [line.decode() for line in complete]
            except OSError:
                return  # closed by close()

    def close(self) -> None:
        """Stop listening and drop every connection, as a Carbon that goes away would."""
        self.closed = True
        with contextlib.suppress(OSError):  # wakes the accepting thread, which holds the port
            self.server.shutdown(socket.SHUT_RDWR)
        self.server.close()
        for conn in self.connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def values(self) -> dict[str, float]:
        """The last value received for each path."""
        with self.lock:
            lines = list(self.lines)
        found = {}
        for line in lines:
            path, value, _ = line.split(" ")
            found[path] = float(value)
        return found

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

    def wait_flush(
        self, check: Callable[[dict[str, str]], bool], after: int = 0, timeout: float = WAIT
    ) -> dict:
        """The first complete flush (from index `after`) whose {path: value} passes `check`."""

        def find():
            for flush in self.flushes()[after:]:
                values = {path: value for path, value, _ in flush}
                if check(values):
                    return values
            return None

        return wait_until(find, timeout, what="a matching flush")

    def next_flush(self) -> int:
        """Wait for one more complete flush; return the count, for `wait_flush(after=...)`."""
        seen = len(self.flushes())
        wait_until(lambda: len(self.flushes()) > seen, what="the next flush")
        return seen + 1
