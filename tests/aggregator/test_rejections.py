"""Rejected lines in the log: the first few per reason and minute, with sender and line."""

from __future__ import annotations

import re
import socket

import pytest

from aggregator.config import from_mapping
from aggregator.parse import Parser
from aggregator.recvmmsg import BATCH, BatchReader, format_address
from aggregator.rejections import SHOWN, Rejected, RejectionSampler, message, needles
from aggregator.state import Interval

from .conftest import free_port, wait_until


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_first_few_of_each_reason_per_minute_are_admitted():
    clock = Clock()
    sampler = RejectionSampler(per_minute=2, clock=clock)
    assert [sampler.admit("bad_value") for _ in range(5)] == [0, 0, None, None, None]
    assert sampler.admit("no_type") == 0  # each reason has its own allowance
    clock.now += 59.9
    assert sampler.admit("bad_value") is None
    clock.now += 0.1  # a minute after the window opened: the next one says what was left out
    assert [sampler.admit("bad_value") for _ in range(3)] == [4, 0, None]
    clock.now += 60
    assert sampler.admit("bad_value") == 1


def test_no_allowance_logs_nothing():
    sampler = RejectionSampler(per_minute=0, clock=Clock())
    assert sampler.admit("bad_value") is None


def test_the_parser_keeps_only_admitted_lines_but_counts_all():
    clock = Clock()
    parser = Parser(from_mapping({}), RejectionSampler(per_minute=3, clock=clock))
    iv = Interval()
    parser.feed(b"\n".join(b"a:x%d|c" % i for i in range(100)) + b"\nb:1|q", iv)
    assert iv.rejects == {"bad_value": 100, "unknown_type": 1}
    assert [(r.reason, r.line) for r in parser.rejected] == [
        ("bad_value", "a:x0|c"),
        ("bad_value", "a:x1|c"),
        ("bad_value", "a:x2|c"),
        ("unknown_type", "b:1|q"),
    ]
    parser.rejected.clear()
    clock.now += 60
    parser.feed(b"a:y|c", iv)
    assert parser.rejected == [Rejected("bad_value", "a:y|c", 97)]


def test_a_tagged_line_is_shown_as_sent_and_found_by_its_name():
    parser = Parser(from_mapping({}))
    parser.feed(b"req,route=home:x|c|#method:get", Interval())
    (item,) = parser.rejected
    assert message(item, "10.0.0.1:5000") == (
        "rejected line (bad_value) from 10.0.0.1:5000: 'req,route=home:x|c|#method:get'"
    )
    assert needles(item) == [b"req,route=home:x|c|#method:get", b"req,route=home"]


def test_the_logged_line_is_cut_and_cannot_forge_log_lines():
    item = Rejected("bad_value", "a:" + "x" * 500 + "\n2026 fake entry|c", 0)
    text = message(item, None)
    assert "\n" not in text
    assert text.startswith("rejected line (bad_value) from a sender not recorded: 'a:xxx")
    assert text.endswith(f" (first {SHOWN} of {len(item.line)})")
    assert message(Rejected("invalid_utf8", b"\xff:1|c", 2), "x") == (
        "rejected line (invalid_utf8) from x: b'\\xff:1|c'; 2 more left out in the minute before"
    )
    oversized = message(Rejected("oversized_datagram", None, 0), "x")
    assert oversized.endswith("(the datagram, not read)")


def test_a_set_member_is_logged_by_its_length_only():
    """Set members are often user pseudonyms: they reach no log, the rest of the line does."""
    parser = Parser(from_mapping({}))
    parser.feed(b"app.users.active:c0ffee0123456789|s|@zero\nc0ffee0123456789|s", Interval())
    shown = [message(item, "x") for item in parser.rejected]
    assert shown == [
        "rejected line (bad_sample_rate) from x: 'app.users.active:<16 characters>|s|@zero'",
        "rejected line (no_value) from x: '<16 characters>|s'",
    ]
    assert message(Rejected("invalid_utf8", b"u\xff:m\xe9mber|s", 0), "x").endswith(
        "b'u\\xff:<6 characters>|s'"
    )
    assert message(Rejected("bad_value", "a:y|c", 0), "x").endswith("'a:y|c'")  # not a set


def test_addresses_are_formatted_for_each_family():
    v4 = socket.AF_INET.to_bytes(2, "little") + (5000).to_bytes(2, "big") + bytes([10, 0, 0, 1])
    assert format_address(v4 + bytes(8)) == "10.0.0.1:5000"
    v6 = socket.AF_INET6.to_bytes(2, "little") + (53).to_bytes(2, "big") + bytes(4)
    assert format_address(v6 + bytes(15) + b"\x01" + bytes(4)) == "[::1]:53"
    unix = socket.AF_UNIX.to_bytes(2, "little")
    assert format_address(unix + b"/run/app.sock\x00") == "/run/app.sock"
    assert format_address(unix) == "an unnamed Unix socket"
    assert format_address(unix + b"\x00name") == "@name"


@pytest.fixture
def receiver():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)  # a full batch fits
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    yield sock
    sock.close()


def test_the_sender_of_a_line_is_found_in_the_batch(receiver):
    batch = BatchReader.create(1001)
    if batch is None:
        pytest.skip("no recvmmsg on this system")
    senders = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3)]
    try:
        for i, s in enumerate(senders):
            s.bind(("127.0.0.1", 0))
            s.sendto(b"good:1|c\nbad%d:x|c" % i, receiver.getsockname())
        senders[1].sendto(b"y" * 2000, receiver.getsockname())  # cut: longer than the slot
        # loopback delivers within sendto: the datagrams are there
        data, count, cut, _ = batch.read(receiver)
        assert (count, cut) == (4, 1)
        ports = [f"127.0.0.1:{s.getsockname()[1]}" for s in senders]
        assert [batch.sender(data, b"bad%d:x|c" % i) for i in range(3)] == ports
        assert batch.sender(data, b"good:1|c") == ports[0]
        assert batch.sender(data, None) == ports[1]
        assert batch.sender(data, b"absent") is None
        senders[2].sendto(b"n:x|c", receiver.getsockname())  # the next read: new addresses
        data, _, _, _ = batch.read(receiver)
        assert batch.sender(data, b"n:x|c") == ports[2]
    finally:
        for s in senders:
            s.close()


LOGGED = re.compile(r"rejected line \((\w+)\) from (.+?): (.*)")


def test_the_daemon_logs_rejected_lines_with_their_sender(start_daemon):
    daemon = start_daemon()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        sender.bind(("127.0.0.1", 0))
        port = sender.getsockname()[1]
        for i in range(20):
            sender.sendto(b"ok:1|c\nlat:-%d|ms" % i, ("127.0.0.1", daemon.port))
        sender.sendto(b"x:1|c|\xff", ("127.0.0.1", daemon.port))

        def logged():
            return [m.groups() for m in LOGGED.finditer(daemon.log())]

        wait_until(lambda: len(logged()) >= 6, what="the rejections in the log")
    entries = logged()
    negative = [e for e in entries if e[0] == "negative_timer"]
    # at most 5 a minute per receiver (2 receivers), 20 sent
    assert 5 <= len(negative) <= 10
    assert all(e[1] == f"127.0.0.1:{port}" for e in entries)
    assert negative[0][2].startswith("'lat:-")
    assert ("invalid_utf8", f"127.0.0.1:{port}", "b'x:1|c|\\xff'") in entries


def test_events_and_service_checks_with_tags_are_shown_as_sent():
    parser = Parser(from_mapping({}))
    parser.feed(b"_sc|db|7|#a:b|m:x\n_e{5,4}:titl|text|#k:v\n_e{1,1}:a|b|#k:v|#j:w", Interval())
    assert [message(r, "s") for r in parser.rejected] == [
        "rejected line (bad_service_check) from s: '_sc|db|7|#a:b|m:x'",
        "rejected line (repeated_tags) from s: '_e{1,1}:a|b|#k:v|#j:w'",
        "rejected line (bad_event) from s: '_e{5,4}:titl|text|#k:v'",
    ]


def test_full_batches_record_addresses_only_after_a_logged_rejection(receiver):
    """At the receiver's limit (full batches) recording addresses (~70 ns a datagram) is
    skipped until a rejected line was logged."""
    batch = BatchReader.create(1001)
    if batch is None:
        pytest.skip("no recvmmsg on this system")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        sender.bind(("127.0.0.1", 0))
        me = f"127.0.0.1:{sender.getsockname()[1]}"

        def read(count: int) -> str | None:
            for i in range(count):
                sender.sendto(b"n%d:x|c" % i, receiver.getsockname())
            data, n, _, _ = batch.read(receiver)
            assert n == count
            return batch.sender(data, b"n0:x|c")

        assert read(BATCH) == me  # recorded until a full batch was seen
        assert read(BATCH) is None  # the one after a full batch: not recorded
        assert read(3) is None  # nor the next: the last one was full
        assert read(BATCH) == me  # partial batches record again
        batch.keep_addresses(60)  # after a rejected line was logged
        assert read(BATCH) == me
        assert read(BATCH) == me


def test_tcp_and_unix_senders_are_named_too(start_daemon, tmp_path):
    tcp_port, unix_path = free_port(), str(tmp_path / "statsd.sock")
    daemon = start_daemon({"tcp_port": tcp_port, "unix_socket": unix_path})
    with socket.create_connection(("127.0.0.1", tcp_port)) as s:
        s.sendall(b"ok:1|c\ntcp:bad|c\n")
        local = s.getsockname()
        wait_until(lambda: "'tcp:bad|c'" in daemon.log(), what="the TCP rejection in the log")
    named = str(tmp_path / "sender.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as u:
        u.bind(named)
        u.sendto(b"unix:1|zz", unix_path)
        wait_until(lambda: "'unix:1|zz'" in daemon.log(), what="the Unix rejection in the log")
    entries = [m.groups() for m in LOGGED.finditer(daemon.log())]
    assert ("bad_value", f"TCP 127.0.0.1:{local[1]}", "'tcp:bad|c'") in entries
    assert ("unknown_type", named, "'unix:1|zz'") in entries
