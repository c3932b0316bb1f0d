"""The exact bytes that reach a real UDP socket on 127.0.0.1, for every metric type and option."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
import statsd

from statsd_metrics import Client


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda c: c.incr("hits"), b"hits:1|c"),
        (lambda c: c.incr("hits", 5), b"hits:5|c"),
        (lambda c: c.incr("hits", 0.5), b"hits:0.5|c"),
        (lambda c: c.decr("hits"), b"hits:-1|c"),
        (lambda c: c.decr("hits", 3), b"hits:-3|c"),
        (lambda c: c.gauge("load", 42), b"load:42|g"),
        (lambda c: c.gauge("load", 0.75), b"load:0.75|g"),
        (lambda c: c.gauge("load", 0), b"load:0|g"),
        (lambda c: c.gauge("load", 5, delta=True), b"load:+5|g"),
        (lambda c: c.gauge("load", -5, delta=True), b"load:-5|g"),
        (lambda c: c.gauge("load", -7), b"load:0|g\nload:-7|g"),
        (lambda c: c.timing("latency", 12.3456), b"latency:12.346|ms"),
        (lambda c: c.timing("latency", 320), b"latency:320|ms"),
        (lambda c: c.timing("latency", timedelta(seconds=1.5)), b"latency:1500.000|ms"),
        (lambda c: c.set("users", "ana"), b"users:ana|s"),
        (lambda c: c.set("users", 1234), b"users:1234|s"),
        (lambda c: c.set("users", "ana:b|c"), b"users:ana%3Ab%7Cc|s"),
    ],
)
def test_each_metric_type_unbuffered(udp, sink, call, expected):
    client = udp(buffered=False)
    call(client)
    assert sink.recv() == expected
    assert sink.pending() == []
    assert client.stats()["dropped_total"] == 0


def test_prefix_and_constant_tags_on_every_line(udp, sink):
    client = udp(buffered=False, prefix="team app", tags={"env": "prod", "host": "web-1"})
    client.incr("hits")
    client.timing("latency", 3, tags={"route": "/players/<id>", "env": "canary"})
    assert sink.recv() == b"team_app.hits:1|c|#env:prod,host:web-1"
    assert sink.recv() == b"team_app.latency:3|ms|#env:canary,host:web-1,route:-players-_id_"


def test_tag_forms_and_order(udp, sink):
    client = udp(buffered=False)
    client.incr("x", tags={"b": 2, "a": "1"})
    client.incr("x", tags=["b:2", "a:1"])
    client.incr("x", tags=("canary",))
    client.incr("x", tags={})
    assert sink.recv_many(4) == [b"x:1|c|#a:1,b:2", b"x:1|c|#a:1,b:2", b"x:1|c|#canary", b"x:1|c"]


def test_sample_rate_is_applied_client_side_and_written(udp, sink):
    draws = iter([0.2, 0.7, 0.49, 0.5])
    client = udp(buffered=False, random=lambda: next(draws))
    for _ in range(4):
        client.incr("sampled", rate=0.5)
    # 0.2 and 0.49 are below the rate: sent; 0.7 and 0.5 are not.
    assert sink.recv_many(2) == [b"sampled:1|c|@0.5", b"sampled:1|c|@0.5"]
    assert sink.pending() == []
    assert client.stats()["dropped_total"] == 0  # sampling out is not a loss


def test_sample_rate_with_tags_and_every_type(udp, sink):
    client = udp(buffered=False, random=lambda: 0.0, tags={"env": "prod"})
    client.timing("t", 1.0, rate=0.25, tags={"k": "v"})
    client.gauge("g", 3, rate=0.1)
    client.set("s", "x", rate=0.9)
    assert sink.recv_many(3) == [
        b"t:1.000|ms|@0.25|#env:prod,k:v",
        b"g:3|g|@0.1|#env:prod",
        b"s:x|s|@0.9|#env:prod",
    ]


def test_buffered_lines_are_packed_into_one_datagram_on_flush(udp, sink):
    client = udp()
    client.incr("a")
    client.gauge("b", -1)
    client.timing("c", 2.5)
    assert sink.pending() == []  # nothing leaves before the flush
    client.flush()
    assert sink.recv() == b"a:1|c\nb:0|g\nb:-1|g\nc:2.500|ms"
    assert client.stats()["sent_lines"] == 4
    assert client.stats()["sent_payloads"] == 1


def test_buffered_payloads_never_exceed_max_packet_size(udp, sink):
    client = udp(max_packet_size=64)
    lines = [f"metric.number.{i}:1|c".encode() for i in range(20)]
    for i in range(20):
        client.incr(f"metric.number.{i}")
    client.flush()
    datagrams = sink.pending()
    assert all(len(datagram) <= 64 for datagram in datagrams)
    assert b"\n".join(datagrams).split(b"\n") == lines
    # greedy: each datagram is as full as the next line allows
    for datagram, following in itertools.pairwise(datagrams):
        assert len(datagram) + 1 + len(following.split(b"\n")[0]) > 64


def test_a_negative_gauge_pair_is_never_split_across_datagrams(udp, sink):
    client = udp(max_packet_size=20)
    client.incr("aaaaaaaaaaaa")
    client.gauge("gg", -3)
    client.flush()
    assert sink.pending() == [b"aaaaaaaaaaaa:1|c", b"gg:0|g\ngg:-3|g"]


def test_a_line_longer_than_a_payload_travels_alone(udp, sink):
    client = udp(max_packet_size=32)
    client.incr("short")
    client.incr("a" * 40)
    client.incr("tail")
    client.flush()
    assert sink.pending() == [b"short:1|c", b"a" * 40 + b":1|c", b"tail:1|c"]


def test_untagged_lines_are_byte_for_byte_those_of_the_statsd_package(udp, sink):
    """Where both can say the same thing, we say it the same way."""
    ours = udp(buffered=False, prefix="app")
    theirs = statsd.StatsClient("127.0.0.1", sink.port, prefix="app")
    try:
        for client in (ours, theirs):
            client.incr("hits")
            client.incr("hits", 3)
            client.decr("hits", 2)
            client.gauge("load", 7)
            client.gauge("load", 2, delta=True)
            client.gauge("load", -2, delta=True)
            client.set("users", "ana")
        assert sink.recv_many(7) == sink.recv_many(7)
    finally:
        theirs.close()


def test_statsd_package_call_signatures_work_unchanged(udp, sink):
    client = udp(buffered=False)
    client.incr("a", 2, 1)
    client.timing("b", 5, 1)
    client.gauge("c", 1, 1, True)
    client.set("d", "x", 1)
    with client.timer("e", 1):
        pass
    received = sink.recv_many(5)
    assert received[:4] == [b"a:2|c", b"b:5|ms", b"c:+1|g", b"d:x|s"]
    assert received[4].startswith(b"e:")
    assert received[4].endswith(b"|ms")


def test_stats_start_empty(udp):
    client = udp()
    assert client.stats() == {
        "sent_lines": 0,
        "sent_payloads": 0,
        "dropped": {},
        "dropped_total": 0,
        "queued_lines": 0,
    }


def test_client_is_a_context_manager_that_flushes(sink):
    with Client("127.0.0.1", sink.port, flush_interval=3600) as client:
        client.incr("bye")
    assert sink.recv() == b"bye:1|c"
    client.incr("after")
    assert client.stats()["dropped"] == {"closed": 1}
