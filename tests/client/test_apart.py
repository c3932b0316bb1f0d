"""`Client.set_apart`: members leave in payloads of their own, batched per interval.

On a real socket: a pseudonym must never share a datagram with another metric, nor leave at
the moment of the request that brought it (docs/metrics.md, "Threat model")."""

from __future__ import annotations

import datetime as dt

from freezegun import freeze_time

from statsd_metrics import apart
from statsd_metrics.testing import Recorder


def _lines(datagrams: list[bytes]) -> list[list[str]]:
    return [d.decode("ascii").split("\n") for d in datagrams]


def test_members_wait_for_the_interval_and_leave_alone_deduplicated(udp, sink):
    with freeze_time("2026-06-01 12:00:01") as frozen:
        client = udp(prefix="app")
        for member in ("aa", "bb", "aa", "cc", "bb"):
            client.set_apart("users.active", member)
            client.timing("http.squad.response_bytes", 4597)
        client.flush()
        first = sink.pending()
        assert first
        assert all("|s" not in d.decode() for d in first)  # the request's metrics only
        frozen.tick(dt.timedelta(seconds=10))  # the interval is over
        client.flush()
        batch = _lines(sink.pending())
    assert len(batch) == 1
    assert sorted(batch[0]) == ["app.users.active:aa|s", "app.users.active:bb|s",
                                "app.users.active:cc|s"]  # fmt: skip


def test_a_member_that_came_after_the_turn_waits_for_the_next_one(udp, sink):
    with freeze_time("2026-06-01 12:00:09") as frozen:
        client = udp()
        client.flush()  # the flusher's look before the turn: nothing waiting
        frozen.tick(dt.timedelta(seconds=1.5))  # 12:00:10.5, a new interval
        client.set_apart("users.active", "alone")
        client.flush()
        assert sink.pending() == []  # it would leave at the moment of its request
        frozen.tick(dt.timedelta(seconds=10))
        client.flush()
        assert _lines(sink.pending()) == [["users.active:alone|s"]]


def test_members_leave_in_random_order_and_in_payloads_within_the_size(udp, sink):
    members = [f"{n:016x}" for n in range(200)]
    client = udp(max_packet_size=512)
    for member in members:
        client.set_apart("users.active", member, tags={"env": "test"})
    client.close()  # at close, whatever waits is sent
    batches = _lines(sink.pending())
    assert len(batches) > 1
    assert all(len("\n".join(b)) <= 512 for b in batches)
    got = [line.split(":")[1].split("|")[0] for b in batches for line in b]
    assert sorted(got) == members
    assert got != members  # 200! orders: the same as the calls' is not a coincidence
    assert all(line.endswith("|s|#env:test") for b in batches for line in b)


def test_the_flusher_thread_sends_each_interval(udp, sink, monkeypatch, wait_until):
    monkeypatch.setattr(apart, "INTERVAL", 0.3)
    client = udp(flush_interval=0.05)
    client.set_apart("users.active", "p1")
    client.incr("events.x")
    received: list[bytes] = []
    assert wait_until(lambda: received.extend(sink.pending()) or any(b"|s" in d for d in received))
    for datagram in received:
        lines = datagram.decode().split("\n")
        assert all(line.endswith("|s") for line in lines) or not any("|s" in x for x in lines)


def test_the_recorder_sees_members_at_once(make_client):
    client = make_client(prefix="app")
    with Recorder() as recorder:
        client.set_apart("users.active", "abc")
    recorder.assert_set("app.users.active", "abc")


def test_bad_members_and_a_closed_client_are_counted_drops(udp):
    client = udp()
    client.set_apart("users.active", b"raw")  # not a str, int or float
    client.close()
    client.set_apart("users.active", "late")
    dropped = client.stats()["dropped"]
    assert dropped.get("closed") == 1
    assert sum(dropped.values()) == 2


def test_an_unbuffered_client_sends_a_finished_interval_on_a_later_call(udp, sink):
    with freeze_time("2026-06-01 12:00:01") as frozen:
        client = udp(buffered=False)
        client.set_apart("users.active", "u1")
        frozen.tick(dt.timedelta(seconds=10))
        client.set_apart("users.active", "u2")
        frozen.tick(dt.timedelta(seconds=10))
        client.set_apart("users.active", "u3")
        # u1 was waiting when u2's call looked at the clock; u2 came after that look.
        assert _lines(sink.pending()) == [["users.active:u1|s"]]
        client.close()
        assert sorted(_lines(sink.pending())[0]) == ["users.active:u2|s", "users.active:u3|s"]


def test_a_flush_at_the_turn_leaves_its_own_request_for_the_next_batch(udp, sink):
    with freeze_time("2026-06-01 12:00:01") as frozen:
        client = udp()
        client.set_apart("users.active", "earlier")
        client.flush()  # a look in the first interval: one line waiting
        frozen.tick(dt.timedelta(seconds=10))
        client.set_apart("users.active", "now")  # the request whose flush comes next
        client.flush()
        assert _lines(sink.pending()) == [["users.active:earlier|s"]]
        frozen.tick(dt.timedelta(seconds=10))
        client.flush()
        assert _lines(sink.pending()) == [["users.active:now|s"]]
