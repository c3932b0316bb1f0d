"""Code written for the `statsd` package, run unchanged with `statsd.StatsClient` (and its TCP
and Unix variants) and with ours, over real sockets: the same lines arrive.

Each scenario is written against the package's API only. Ours runs in its default buffered
mode and is flushed at the end; lines are compared in order, with timer values (measured, so
never equal) and number formatting set aside.
"""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import statsd

import statsd_metrics
from statsd_metrics.compat import TCPStatsClient, UnixSocketStatsClient

Scenario = Callable[[Any], None]


def counters_gauges_sets(client: Any) -> None:
    client.incr("hits")
    client.incr("hits", 3)
    client.decr("hits", 2)
    client.incr("always", rate=2)  # a rate of 1 or more: sent unsampled
    client.gauge("load", 7)
    client.gauge("load", 2, delta=True)
    client.gauge("load", -3, delta=True)
    client.gauge("below", -5)  # absolute and negative: `0` then the value
    client.set("users", "ana")
    client.set("users", 7)
    client.set("ratios", 2.3)
    client.timing("took", 12)
    client.timing("took", timedelta(milliseconds=3))


def timer_objects(client: Any) -> None:
    timer = client.timer("obj").start()
    timer.stop(send=False)
    assert timer.ms is not None
    assert timer.ms >= 0
    timer.send()
    client.timer("stopped").start().stop()
    with client.timer("block"):
        pass

    @client.timer("decorated")
    def work() -> int:
        return 1

    assert work() == 1


def pipelines(client: Any) -> None:
    with client.pipeline() as pipe:
        pipe.incr("p.a")
        pipe.gauge("p.below", -1)
        pipe.set("p.s", 1.5)
        with pipe.timer("p.block"):
            pass

        @pipe.timer("p.decorated")
        def work() -> None:
            pass

        work()
        pipe.timer("p.obj").start().stop()
        nested = pipe.pipeline()
        nested.incr("p.nested")
        nested.send()
    pipe.send()  # sent already: nothing the second time
    pipe = client.pipeline()
    pipe.send()  # empty: nothing
    pipe.decr("p.later")
    pipe.send()


SCENARIOS = [counters_gauges_sets, timer_objects, pipelines]


def normalise(line: str) -> str:
    """`name:value|type[...]` with a timer's value replaced and numbers in one format."""
    name, _, rest = line.partition(":")
    value, bar, tail = rest.partition("|")
    if tail.startswith("ms"):
        value = "<ms>"
    elif not tail.startswith("s"):
        sign = value[0] if value[:1] in "+-" else ""
        number = float(value.lstrip("+-"))
        value = sign + (str(int(number)) if number.is_integer() else repr(number))
    return f"{name}:{value}{bar}{tail}"


class Receiver:
    """A real server socket collecting lines: UDP datagrams, or TCP/Unix stream connections."""

    def __init__(self, family: int, kind: int, address: Any) -> None:
        self.sock = socket.socket(family, kind)
        self.sock.bind(address)
        self.stream = kind == socket.SOCK_STREAM
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self._stop = False
        if self.stream:
            self.sock.listen()
        self.sock.settimeout(0.05)
        self._threads = [threading.Thread(target=self._run, daemon=True)]
        self._threads[0].start()

    def _add(self, data: bytes) -> None:
        with self._lock:
            self.lines.extend(line for line in data.decode("ascii").split("\n") if line)

    def _run(self) -> None:
        while not self._stop:
            try:
                if self.stream:
                    conn, _ = self.sock.accept()
                    thread = threading.Thread(target=self._read, args=(conn,), daemon=True)
                    self._threads.append(thread)
                    thread.start()
                else:
                    self._add(self.sock.recv(65535))
            except (TimeoutError, OSError):
                continue

    def _read(self, conn: socket.socket) -> None:
        conn.settimeout(0.05)
        pending = b""
        with conn:
            while not self._stop:
                try:
                    data = conn.recv(65535)
                except TimeoutError:
                    continue
                if not data:
                    break
                pending += data
                complete, _, pending = pending.rpartition(b"\n")
                if complete:
                    self._add(complete)

    def take(self, quiet: float = 0.3, limit: float = 5.0) -> list[str]:
        """The lines received, once nothing new has arrived for `quiet` seconds."""
        deadline = time.monotonic() + limit
        seen = -1
        while time.monotonic() < deadline:
            with self._lock:
                count = len(self.lines)
            if count == seen:
                break
            seen = count
            time.sleep(quiet)
        with self._lock:
            lines, self.lines = self.lines, []
        return lines

    def close(self) -> None:
        self._stop = True
        for thread in self._threads:
            thread.join(2.0)
        self.sock.close()


@pytest.fixture
def unix_path() -> Iterator[str]:
    folder = tempfile.mkdtemp(prefix="statsd-compat-", dir="/tmp")  # short: sun_path <= 108
    yield os.path.join(folder, "statsd.sock")
    for name in os.listdir(folder):
        os.unlink(os.path.join(folder, name))
    os.rmdir(folder)


def run_both(
    receiver: Receiver, theirs: Any, ours: statsd_metrics.Client, scenario: Scenario
) -> tuple[list[str], list[str]]:
    try:
        scenario(theirs)
        expected = receiver.take()
        scenario(ours)
        ours.flush()
        got = receiver.take()
    finally:
        theirs.close()
        ours.close()
        receiver.close()
    return [normalise(line) for line in expected], [normalise(line) for line in got]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_udp_with_the_four_argument_constructor(scenario):
    receiver = Receiver(socket.AF_INET, socket.SOCK_DGRAM, ("127.0.0.1", 0))
    port = receiver.sock.getsockname()[1]
    theirs = statsd.StatsClient("127.0.0.1", port, "app", 512)
    ours = statsd_metrics.Client("127.0.0.1", port, "app", 512)
    expected, got = run_both(receiver, theirs, ours, scenario)
    assert expected  # the scenario did send something
    assert got == expected


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_tcp(scenario):
    receiver = Receiver(socket.AF_INET, socket.SOCK_STREAM, ("127.0.0.1", 0))
    port = receiver.sock.getsockname()[1]
    theirs = statsd.TCPStatsClient("127.0.0.1", port, "app", None)
    ours = TCPStatsClient("127.0.0.1", port, "app", None)
    expected, got = run_both(receiver, theirs, ours, scenario)
    assert expected
    assert got == expected


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_unix_stream_socket(scenario, unix_path):
    receiver = Receiver(socket.AF_UNIX, socket.SOCK_STREAM, unix_path)
    theirs = statsd.UnixSocketStatsClient(unix_path, "app", None)
    ours = UnixSocketStatsClient(unix_path, "app", None)
    expected, got = run_both(receiver, theirs, ours, scenario)
    assert expected
    assert got == expected


def test_a_unix_stream_socket_is_detected_by_the_plain_client(unix_path):
    receiver = Receiver(socket.AF_UNIX, socket.SOCK_STREAM, unix_path)
    ours = statsd_metrics.Client(socket_path=unix_path)
    try:
        ours.incr("found")
        ours.flush()
        assert receiver.take() == ["found:1|c"]
        assert ours.stats()["dropped"] == {}
    finally:
        ours.close()
        receiver.close()


def test_a_unix_datagram_socket_still_works(unix_path):
    receiver = Receiver(socket.AF_UNIX, socket.SOCK_DGRAM, unix_path)
    ours = statsd_metrics.Client(transport="unix", socket_path=unix_path)
    try:
        ours.incr("dgram")
        ours.flush()
        assert receiver.take() == ["dgram:1|c"]
    finally:
        ours.close()
        receiver.close()


def test_a_unix_stream_closed_by_the_aggregator_is_reconnected_before_writing(unix_path):
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(unix_path)
    server.listen()
    server.settimeout(2.0)
    ours = statsd_metrics.Client(socket_path=unix_path, buffered=False)
    try:
        ours.incr("first")
        first, _ = server.accept()
        with first:
            first.settimeout(2.0)
            assert first.recv(100) == b"first:1|c\n"
        # the aggregator restarted: the next write goes to a new connection, not the dead one
        ours.incr("second")
        second, _ = server.accept()
        with second:
            second.settimeout(2.0)
            assert second.recv(100) == b"second:1|c\n"
        assert ours.stats()["dropped"] == {}
    finally:
        ours.close()
        server.close()
