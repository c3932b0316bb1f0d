"""The background flusher, many threads, fork and exit: with real sockets and processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from statsd_metrics import Client


class Collector(threading.Thread):
    """Reads datagrams off the sink while the test runs, so the kernel never drops any."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(daemon=True)
        self.sock = sock
        self.lines: list[bytes] = []
        self.stop = threading.Event()

    def run(self) -> None:
        self.sock.settimeout(0.05)
        while not self.stop.is_set():
            try:
                self.lines.extend(self.sock.recv(65535).split(b"\n"))
            except TimeoutError:
                continue
            except OSError:  # the socket was closed under us: the test is over
                return

    def wait_for(self, count: int, timeout: float = 10.0) -> list[bytes]:
        deadline = time.monotonic() + timeout
        while len(self.lines) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        self.stop.set()
        self.join(1)
        return self.lines


def test_the_flusher_sends_without_being_asked(udp, sink):
    client = udp(flush_interval=0.05)
    client.incr("background")
    assert sink.recv(timeout=2) == b"background:1|c"


def test_a_full_payload_leaves_before_the_flush_interval(udp, sink):
    client = udp(flush_interval=3.0)  # looks for full payloads every 0.6 s
    started = time.monotonic()
    for i in range(200):
        client.incr(f"burst.{i:03}")
    first = sink.recv(timeout=3)
    assert time.monotonic() - started < 2.0
    assert first.startswith(b"burst.000:1|c\nburst.001:1|c")
    assert len(first) > 1000


def test_eight_threads_hammering_lose_and_duplicate_nothing(udp, sink):
    client = udp(flush_interval=0.02)
    collector = Collector(sink.sock)
    collector.start()
    per_thread, threads = 2000, 8
    start = threading.Barrier(threads + 2, timeout=10)  # the hammers, the flusher, and us

    def hammer(number: int) -> None:
        start.wait()
        for i in range(per_thread):
            client.set("hammer", f"{number}-{i}")

    def flusher() -> None:  # explicit flushes race the background flusher
        start.wait()
        for _ in range(200):
            client.flush()

    workers = [threading.Thread(target=hammer, args=(n,)) for n in range(threads)]
    workers.append(threading.Thread(target=flusher))
    for worker in workers:
        worker.start()
    start.wait()
    for worker in workers:
        worker.join(30)
    client.flush()
    received = collector.wait_for(per_thread * threads)
    expected = sorted(
        f"hammer:{n}-{i}|s".encode() for n in range(threads) for i in range(per_thread)
    )
    assert sorted(received) == expected
    assert client.stats()["sent_lines"] == per_thread * threads
    assert client.stats()["dropped_total"] == 0


def _in_child(body) -> int:
    """Run `body` in a forked child and return its exit status (0 when it returned True)."""
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            status = 0 if body() else 1
        except BaseException:  # the child must never return into pytest
            status = 2
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_a_forked_child_never_sends_its_parents_buffer(udp, sink):
    client = udp()
    client.incr("parent.before.fork")

    def child() -> bool:
        client.incr("child")
        client.flush()
        return client.stats()["sent_lines"] == 1

    assert _in_child(child) == 0
    assert sink.recv() == b"child:1|c"
    client.incr("parent.after.fork")
    client.flush()
    assert sink.recv() == b"parent.before.fork:1|c\nparent.after.fork:1|c"
    assert sink.pending() == []


def test_a_forked_child_has_its_own_flusher(udp, sink):
    client = udp(flush_interval=0.05)

    def child() -> bool:
        client.incr("from.child.flusher")
        deadline = time.monotonic() + 5
        while client.stats()["sent_lines"] < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        return client.stats()["sent_lines"] == 1

    assert _in_child(child) == 0
    assert sink.recv() == b"from.child.flusher:1|c"


def test_a_forked_child_opens_its_own_tcp_connection(make_client):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(5)
    with listener:
        client = make_client("127.0.0.1", listener.getsockname()[1], transport="tcp",
                             buffered=False)  # fmt: skip
        client.incr("parent.one")
        parent_stream, _ = listener.accept()

        def child() -> bool:
            client.incr("child")
            return client.stats()["sent_lines"] == 1

        assert _in_child(child) == 0
        child_stream, _ = listener.accept()
        client.incr("parent.two")
        with parent_stream, child_stream:
            parent_stream.settimeout(2)
            child_stream.settimeout(2)
            assert child_stream.recv(100) == b"child:1|c\n"
            data = b""
            while data.count(b"\n") < 2:
                data += parent_stream.recv(100)
            assert data == b"parent.one:1|c\nparent.two:1|c\n"


def run_python(code: str, **env: str) -> None:
    subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, timeout=30, check=True)


def test_buffered_lines_are_flushed_at_exit(sink):
    run_python(
        "import statsd_metrics\n"
        f"client = statsd_metrics.Client('127.0.0.1', {sink.port}, flush_interval=3600)\n"
        "client.incr('sent.at.exit')\n"
    )
    assert sink.recv() == b"sent.at.exit:1|c"


def test_the_default_client_from_the_environment_flushes_at_exit(sink):
    run_python(
        "import statsd_metrics\n"
        "@statsd_metrics.counted\n"
        "def handler():\n"
        "    pass\n"
        "handler()\n"
        "statsd_metrics.incr('direct', tags={'k': 'v'})\n",
        STATSD_HOST="127.0.0.1",
        STATSD_PORT=str(sink.port),
        STATSD_PREFIX="svc",
        STATSD_TAGS="env:test",
        STATSD_FLUSH_INTERVAL="3600",
    )
    assert sink.recv() == b"svc.__main__.handler:1|c|#env:test\nsvc.direct:1|c|#env:test,k:v"


@pytest.mark.parametrize("buffered", [True, False])
def test_close_stops_the_background_thread(make_client, sink, buffered):
    before = set(threading.enumerate())
    client = make_client("localhost", sink.port, buffered=buffered, flush_interval=0.05)
    started = set(threading.enumerate()) - before
    assert [thread.name for thread in started] == [
        "statsd-metrics-flusher" if buffered else "statsd-metrics-resolver"
    ]
    client.close()
    assert not any(thread.is_alive() for thread in started)


def test_clients_are_not_kept_alive_by_the_registry():
    import gc
    import weakref

    client = Client(buffered=False)
    reference = weakref.ref(client)
    del client
    gc.collect()
    assert reference() is None
