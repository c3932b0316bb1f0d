"""Fire and forget, guaranteed: every failure mode, with real sockets, never raises into the
caller and is counted under its reason."""

from __future__ import annotations

import logging
import math
import os
import socket
import tempfile

import pytest

from support.net import free_port


def test_unresolvable_host_at_construction(make_client, caplog):
    client = make_client("nonexistent.invalid", 8125, buffered=False)
    client.incr("x")
    client.timing("y", 1)
    assert client.stats()["dropped"] == {"unresolved": 2}
    assert "unresolved" in caplog.text


def test_unresolvable_host_buffered_drops_at_flush(make_client):
    def broken_resolver(*args):
        raise socket.gaierror(socket.EAI_NONAME, "no such host")

    client = make_client("metrics.internal", 8125, resolver=broken_resolver)
    client.incr("x")
    client.incr("y")
    client.flush()
    assert client.stats()["dropped"] == {"unresolved": 2}


def test_refused_udp_port_is_counted_exactly_then_recovers(make_client, clock):
    port = free_port()
    client = make_client("127.0.0.1", port, buffered=False, clock=clock)
    client.incr("lost.one")
    client.incr("lost.two")  # within the retry interval: no new socket, counted at once
    assert client.stats()["dropped"] == {"refused": 2}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as aggregator:
        aggregator.bind(("127.0.0.1", port))
        aggregator.settimeout(2)
        clock.advance(1.0)
        client.incr("found")
        assert aggregator.recv(100) == b"found:1|c"
    assert client.stats()["sent_lines"] == 1


def test_aggregator_going_away_after_confirmation(make_client, clock):
    aggregator = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    aggregator.bind(("127.0.0.1", 0))
    port = aggregator.getsockname()[1]
    client = make_client("127.0.0.1", port, buffered=False, clock=clock)
    client.incr("ok")
    assert aggregator.recv(100) == b"ok:1|c"
    aggregator.close()
    client.incr("unseen")  # accepted by the kernel, refused by ICMP
    client.incr("noticed")  # the refusal surfaces: both are counted
    assert client.stats()["dropped"] == {"refused": 2}
    assert client.stats()["sent_lines"] == 1


def test_refused_buffered_flush_counts_every_line(make_client):
    client = make_client("127.0.0.1", free_port())
    for i in range(5):
        client.incr(f"m{i}")
    client.flush()
    assert client.stats()["dropped"] == {"refused": 5}
    assert client.stats()["sent_lines"] == 0


def test_refused_tcp_connection(make_client, clock):
    client = make_client("127.0.0.1", free_port(socket.SOCK_STREAM), transport="tcp",
                         buffered=False, clock=clock)  # fmt: skip
    client.incr("a")
    client.incr("b")
    assert client.stats()["dropped"] == {"refused": 2}


def test_full_socket_buffer(make_client):
    """A Unix datagram receiver that does not read fills up: the kernel says so at once (UDP
    on loopback drops at the receiver instead, where no sender can see it)."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "statsd.sock")
        receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        receiver.bind(path)
        try:
            client = make_client(socket_path=path, buffered=False)
            for i in range(200):
                client.incr(f"m{i}")
            stats = client.stats()
            assert stats["dropped"]["buffer_full"] > 0
            assert stats["sent_lines"] + stats["dropped"]["buffer_full"] == 200
            received = []
            receiver.setblocking(False)
            while True:
                try:
                    received.append(receiver.recv(100))
                except BlockingIOError:
                    break
            assert received == [f"m{i}:1|c".encode() for i in range(stats["sent_lines"])]
        finally:
            receiver.close()


def test_a_line_too_large_for_any_datagram(udp, sink):
    client = udp()
    client.incr("fine")
    client.incr("huge", tags={"blob": "x" * 70_000})
    client.incr("also.fine")
    client.flush()
    assert client.stats()["dropped"] == {"too_large": 1}
    assert sink.pending() == [b"fine:1|c", b"also.fine:1|c"]


def test_queue_full_keeps_the_newest_lines(udp, sink):
    client = udp(max_queue=10)
    for i in range(15):
        client.incr(f"m{i}")
    assert client.stats()["queued_lines"] == 15
    client.flush()
    assert client.stats()["dropped"] == {"queue_full": 5}
    assert sink.recv().split(b"\n") == [f"m{i}:1|c".encode() for i in range(5, 15)]


@pytest.mark.parametrize(
    ("call", "reason"),
    [
        (lambda c: c.incr("x", "1"), "bad_value"),
        (lambda c: c.incr("x", None), "bad_value"),
        (lambda c: c.incr("x", math.nan), "bad_value"),
        (lambda c: c.decr("x", "2"), "bad_value"),
        (lambda c: c.gauge("x", math.inf), "bad_value"),
        (lambda c: c.gauge("x", "3"), "bad_value"),
        (lambda c: c.timing("x", -1), "bad_value"),
        (lambda c: c.timing("x", "12"), "bad_value"),
        (lambda c: c.set("x", [1]), "bad_value"),
        (lambda c: c.set("x", ""), "bad_value"),
        (lambda c: c.incr(""), "bad_name"),
        (lambda c: c.incr(":|@#"), "bad_name"),
        (lambda c: c.incr(None), "bad_name"),
        (lambda c: c.timing(42, 1.0), "bad_name"),
        (lambda c: c.incr(["x"]), "bad_argument"),
        (lambda c: c.incr("x", rate=-1), "bad_rate"),
        (lambda c: c.incr("x", rate=0), "bad_rate"),
        (lambda c: c.incr("x", rate="0.5"), "bad_rate"),
        (lambda c: c.incr("x", tags=5), "bad_tags"),
        (lambda c: c.incr("x", tags="k:v"), "bad_tags"),
        (lambda c: c.timing("x", 1.0, tags=[1]), "bad_tags"),
    ],
)
def test_bad_arguments_are_counted_never_raised_never_sent(udp, sink, call, reason):
    client = udp(buffered=False)
    call(client)
    assert client.stats()["dropped"] == {reason: 1}
    assert sink.pending() == []


def test_unhashable_tag_values_still_work(udp, sink):
    client = udp(buffered=False)
    client.incr("x", tags={"ids": [1, 2]})
    assert sink.recv() == b"x:1|c|#ids:_1_2_"


def test_closed_client_counts_and_never_raises(udp, sink):
    client = udp()
    client.incr("before")
    client.close()
    assert sink.recv() == b"before:1|c"
    client.incr("a")
    client.gauge("b", 1)
    client.timing("c", 1)
    client.set("d", "x")
    with client.timed("e"):
        pass
    assert client.timed(lambda: 7)() == 7
    client.flush()
    client.close()
    assert client.stats()["dropped"] == {"closed": 6}
    assert sink.pending() == []


@pytest.mark.parametrize(
    "options",
    [
        {"port": "not-a-port"},
        {"port": 70_000},
        {"transport": "pigeon"},
        {"transport": "unix"},
        {"flush_interval": 0},
        {"max_packet_size": -1},
        {"buffered": "maybe"},
        {"host": ""},
        {"prefix": ":|"},
        {"tags": 5},
    ],
)
def test_bad_configuration_never_raises_and_drops_visibly(make_client, options, caplog):
    with caplog.at_level(logging.ERROR, logger="statsd_metrics"):
        client = make_client(**options)
    client.incr("x")
    client.flush()
    assert client.stats()["dropped"] == {"bad_config": 1}
    assert "invalid configuration" in caplog.text


def test_internal_errors_are_contained(udp, sink):
    def broken_random() -> float:
        raise RuntimeError("boom")

    client = udp(buffered=False, random=broken_random)
    client.incr("x", rate=0.5)
    client.incr("y")
    assert client.stats()["dropped"] == {"error": 1}
    assert sink.recv() == b"y:1|c"


def test_first_drop_of_each_reason_is_logged_once(udp, caplog):
    client = udp(buffered=False)
    with caplog.at_level(logging.WARNING, logger="statsd_metrics"):
        for _ in range(3):
            client.incr("x", "bad")
        client.incr("x", rate=-5)
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2
    assert "(bad_value)" in messages[0]
    assert "str of length 3 is not a number" in messages[0]
    assert "(bad_rate)" in messages[1]
    assert client.stats()["dropped"] == {"bad_value": 3, "bad_rate": 1}
