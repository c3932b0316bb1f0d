"""TCP and Unix datagram transports, `localhost` on either IP family, and re-resolution."""

from __future__ import annotations

import os
import socket
import tempfile
import threading

import pytest


class TCPAggregator:
    """A loopback TCP listener that collects everything its connections send."""

    def __init__(self, port: int = 0) -> None:
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", port))
        self.listener.listen()
        self.listener.settimeout(2)
        self.port = self.listener.getsockname()[1]

    def accept(self) -> socket.socket:
        connection, _ = self.listener.accept()
        connection.settimeout(2)
        return connection

    @staticmethod
    def read_lines(connection: socket.socket, count: int) -> list[bytes]:
        data = b""
        while data.count(b"\n") < count:
            chunk = connection.recv(65535)
            if not chunk:
                break
            data += chunk
        return data.splitlines()

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def tcp_aggregator():
    aggregator = TCPAggregator()
    yield aggregator
    aggregator.close()


def test_tcp_sends_newline_terminated_lines(make_client, tcp_aggregator):
    client = make_client("127.0.0.1", tcp_aggregator.port, transport="tcp", buffered=False)
    client.incr("a", tags={"k": "v"})
    connection = tcp_aggregator.accept()
    client.gauge("b", -2)
    assert TCPAggregator.read_lines(connection, 3) == [b"a:1|c|#k:v", b"b:0|g", b"b:-2|g"]
    connection.close()


def test_tcp_buffered_payloads_end_with_a_newline(make_client, tcp_aggregator):
    client = make_client("127.0.0.1", tcp_aggregator.port, transport="tcp", max_packet_size=20)
    for name in ("first", "second", "third"):
        client.incr(name)
    client.flush()
    connection = tcp_aggregator.accept()
    data = b""
    while data.count(b"\n") < 3:
        data += connection.recv(65535)
    assert data == b"first:1|c\nsecond:1|c\nthird:1|c\n"
    assert client.stats()["sent_payloads"] == 2
    connection.close()


def test_tcp_reconnects_when_the_aggregator_restarts(make_client, tcp_aggregator):
    """The closed connection is noticed before writing, so no line vanishes into it."""
    client = make_client("127.0.0.1", tcp_aggregator.port, transport="tcp", buffered=False)
    client.incr("before")
    first = tcp_aggregator.accept()
    assert TCPAggregator.read_lines(first, 1) == [b"before:1|c"]
    first.close()  # the aggregator restarts: its end of the stream is gone
    client.incr("after")
    second = tcp_aggregator.accept()
    assert TCPAggregator.read_lines(second, 1) == [b"after:1|c"]
    assert client.stats()["dropped_total"] == 0
    second.close()


def test_unix_datagram_socket(make_client):
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "statsd.sock")
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
            receiver.bind(path)
            receiver.settimeout(2)
            client = make_client(socket_path=path, prefix="app")
            client.incr("hits")
            client.timing("t", 2)
            client.flush()
            assert receiver.recv(1000) == b"app.hits:1|c\napp.t:2|ms"


def test_unix_socket_missing_then_present(make_client, clock):
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "statsd.sock")
        client = make_client(transport="unix", socket_path=path, buffered=False, clock=clock)
        client.incr("early")
        assert client.stats()["dropped"] == {"refused": 1}
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
            receiver.bind(path)
            receiver.settimeout(2)
            clock.advance(1.0)
            client.incr("late")
            assert receiver.recv(100) == b"late:1|c"


def loopback_port_free_on_both_families() -> tuple[socket.socket, int]:
    """An IPv6 receiver on ::1 whose port is free on 127.0.0.1 too."""
    for _ in range(20):
        v6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        v6.bind(("::1", 0))
        port = v6.getsockname()[1]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as v4:
            try:
                v4.bind(("127.0.0.1", port))
            except OSError:
                v6.close()
                continue
        return v6, port
    pytest.skip("no port free on both loopbacks")


def test_localhost_reaches_an_ipv6_only_aggregator(make_client):
    receiver, port = loopback_port_free_on_both_families()
    with receiver:
        receiver.settimeout(2)
        client = make_client("localhost", port, buffered=False)
        client.incr("first")  # tried on 127.0.0.1, refused, re-sent to ::1
        client.incr("second")
        assert receiver.recv(100) == b"first:1|c"
        assert receiver.recv(100) == b"second:1|c"
    assert client.stats()["dropped_total"] == 0


def test_localhost_reaches_an_ipv4_only_aggregator(make_client, sink):
    client = make_client("localhost", sink.port, buffered=False)
    client.incr("v4")
    assert sink.recv() == b"v4:1|c"


def test_localhost_over_tcp_reaches_an_ipv6_only_aggregator(make_client):
    listener = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    listener.bind(("::1", 0))
    listener.listen()
    listener.settimeout(2)
    port = listener.getsockname()[1]
    with listener:
        client = make_client("localhost", port, transport="tcp", buffered=False)
        client.incr("over.tcp6")
        connection, _ = listener.accept()
        with connection:
            connection.settimeout(2)
            assert connection.recv(100) == b"over.tcp6:1|c\n"


def test_host_names_are_re_resolved_on_schedule(make_client, clock, wait_until):
    """The aggregator's address changes (127.0.0.1 -> 127.0.0.2): after `resolve_interval`,
    the flusher looks the name up again and the next lines go to the new address."""
    old = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    old.bind(("127.0.0.1", 0))
    port = old.getsockname()[1]
    new = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    new.bind(("127.0.0.2", port))
    addresses = {"current": "127.0.0.1"}
    lookups = []

    def resolver(host, port, family, kind):
        lookups.append(host)
        return [(socket.AF_INET, kind, 17, "", (addresses["current"], port))]

    with old, new:
        old.settimeout(2)
        new.settimeout(2)
        client = make_client("statsd.internal", port, resolver=resolver, clock=clock,
                             resolve_interval=30, flush_interval=0.05)  # fmt: skip
        client.incr("before")
        assert old.recv(100) == b"before:1|c"
        addresses["current"] = "127.0.0.2"
        clock.advance(29)
        client.incr("not.yet")
        assert old.recv(100) == b"not.yet:1|c"
        assert lookups == ["statsd.internal"]
        clock.advance(1)
        assert wait_until(lambda: len(lookups) == 2)
        client.incr("after")
        assert new.recv(100) == b"after:1|c"


def test_a_failed_lookup_keeps_the_last_address(make_client, sink, clock, wait_until):
    answers = [[(socket.AF_INET, socket.SOCK_DGRAM, 17, "", ("127.0.0.1", sink.port))]]
    calls = []

    def resolver(*args):
        calls.append(args)
        if len(calls) > 1:
            raise socket.gaierror(socket.EAI_AGAIN, "temporary failure")
        return answers[0]

    client = make_client("statsd.internal", sink.port, resolver=resolver, clock=clock,
                         resolve_interval=10, flush_interval=0.05)  # fmt: skip
    clock.advance(10)
    assert wait_until(lambda: len(calls) >= 2)
    client.incr("still.here")
    assert sink.recv() == b"still.here:1|c"
    assert client.stats()["dropped_total"] == 0


def test_ip_literals_are_never_looked_up_again(make_client, sink, clock):
    calls = []

    def resolver(host, port, family, kind):
        calls.append(host)
        return socket.getaddrinfo(host, port, family, kind)

    before = set(threading.enumerate())
    client = make_client("127.0.0.1", sink.port, resolver=resolver, clock=clock, buffered=False)
    clock.advance(10_000)
    client.incr("x")
    assert sink.recv() == b"x:1|c"
    assert calls == ["127.0.0.1"]
    assert set(threading.enumerate()) == before  # no background thread: nothing to refresh


def test_a_host_that_did_not_resolve_is_retried_every_second(make_client, sink, clock, wait_until):
    """DNS was down when the application started: metrics flow once the name resolves."""
    calls = []

    def resolver(host, port, family, kind):
        calls.append(host)
        if len(calls) == 1:
            raise socket.gaierror(socket.EAI_AGAIN, "temporary failure in name resolution")
        return [(socket.AF_INET, kind, 17, "", ("127.0.0.1", port))]

    client = make_client("statsd.internal", sink.port, resolver=resolver, clock=clock,
                         resolve_interval=300, flush_interval=0.05)  # fmt: skip
    client.incr("while.unresolved")
    client.flush()
    assert client.stats()["dropped"] == {"unresolved": 1}
    clock.advance(1.0)  # the retry interval, not the resolve interval
    assert wait_until(lambda: len(calls) == 2)
    client.incr("once.resolved")
    assert sink.recv() == b"once.resolved:1|c"
