"""Hypothesis: arbitrary bytes never break the parser or a live daemon; valid lines never fail."""

from __future__ import annotations

import math
import re
import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregator.config import from_mapping
from aggregator.flush import Flush
from aggregator.parse import Parser
from aggregator.state import Interval, Store

from .conftest import wait_until

KEY_CHARS = re.compile(r"[A-Za-z0-9_.\-;=]+")


def fresh(**config) -> tuple[Parser, Interval]:
    return Parser(from_mapping(config)), Interval()


@settings(max_examples=400, deadline=None)
@given(st.lists(st.binary(max_size=200), max_size=6))
def test_arbitrary_datagrams_never_raise_and_leave_a_clean_state(datagrams):
    parser, iv = fresh(max_datagram_size=150)
    parser.feed_many(datagrams, iv)
    assert iv.packets == len(datagrams)
    assert iv.bad == sum(iv.rejects.values())
    for mapping in (iv.counters, iv.timers, iv.gauges, iv.sets):
        assert all(KEY_CHARS.fullmatch(key) and not key.startswith(";") for key in mapping)
    assert all(math.isfinite(v) for v in iv.counters.values())
    assert all(math.isfinite(v) and v >= 0 for values in iv.timers.values() for v in values)
    for gauge in iv.gauges.values():
        assert all(math.isfinite(d) for _, d in gauge.deltas)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=60), max_size=6))
def test_batched_and_one_by_one_parsing_agree(texts):
    datagrams = [t.encode() for t in texts]
    parser, one = fresh()
    for d in datagrams:
        parser.feed(d, one)
    parser, batch = fresh()
    parser.feed_many(datagrams, batch)
    batch.last_msg_seen = one.last_msg_seen
    assert batch == one


# A Graphite plaintext line: a path of safe characters, a finite number, the flush's timestamp.
PLAINTEXT = re.compile(r"([A-Za-z0-9_.\-;=]+) (-?[0-9.e+\-]+) 1000000")
OUTPUT_CONFIGS = [{}, {"tag_mode": "path"}, {"key_name_sanitize": False, "legacy_namespace": False}]
NUMBERS = st.sampled_from([b"1", b"-2.5", b"1e308", b"-1e308", b"1e200", b"+1e308", b"0.1"])
LINES = st.builds(
    lambda name, value, kind: name + b":" + value + kind,
    st.binary(max_size=12) | st.sampled_from([b"a", b"a;k=v", b"a|#k:v"]),
    NUMBERS | st.binary(max_size=8),
    st.sampled_from([b"|c", b"|ms", b"|g", b"|s", b"|c|@1e-300", b"|h|@0.5", b"|c|#t:1"]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(LINES | st.binary(max_size=40), max_size=8), max_size=4),
       st.sampled_from(OUTPUT_CONFIGS))  # fmt: skip
def test_whatever_senders_write_carbon_gets_only_well_formed_lines(datagrams, config):
    """No input, however hostile or extreme, breaks the plaintext protocol: one metric a line,
    a clean path, a finite value (an infinite one would be stored by Whisper and break every
    render API answer that holds the series: JSON has no Infinity)."""
    parser, iv = fresh(**config)
    parser.feed_many([b"\n".join(lines) for lines in datagrams], iv)
    flush = Flush(from_mapping(config))
    store = Store()
    flush.init_store(store)
    store.merge([iv], "statsd", None)
    result = flush(store, 1_000_000)
    lines = b"".join(result.payload).decode("ascii").split("\n")
    assert lines.pop() == ""
    assert len(lines) == result.lines
    for line in lines:
        match = PLAINTEXT.fullmatch(line)
        assert match, line
        assert math.isfinite(float(match[2])), line


names = st.from_regex(r"[A-Za-z][A-Za-z0-9_.\-]{0,30}", fullmatch=True)
decimals = st.decimals(min_value=-1e6, max_value=1e6, places=3, allow_nan=False).map(str)
rates = st.sampled_from(["", "|@0.5", "|@0.1", "|@1", "|@.25"])


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(names, decimals, st.sampled_from(["c", "ms", "g", "s"]), rates),
        min_size=1,
        max_size=20,
    )
)
def test_well_formed_lines_are_always_accepted(lines):
    parser, iv = fresh()
    text = "\n".join(
        f"{name}:{value.lstrip('-') if typ == 'ms' else value}|{typ}{rate}"
        for name, value, typ, rate in lines
    )
    parser.feed(text.encode(), iv)
    assert iv.bad == 0, iv.rejects
    assert iv.metrics == len(lines)
    expected: dict[str, float] = {}
    for name, value, typ, rate in lines:
        if typ == "c":
            r = float(rate[2:]) if rate else 1.0
            expected[name] = expected.get(name, 0) + float(value) * (1 / r)
    assert iv.counters == pytest.approx(expected)


@pytest.mark.slow
def test_a_live_daemon_survives_arbitrary_datagrams_and_counts_them(start_daemon, sink):
    d = start_daemon({"max_datagram_size": 400})
    sent = []
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    @settings(
        max_examples=150,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(st.lists(st.binary(max_size=600), min_size=1, max_size=5))
    def throw(datagrams):
        for datagram in datagrams:
            sender.sendto(datagram, ("127.0.0.1", d.port))
            sent.append(datagram)

    throw()
    with socket.create_connection(("127.0.0.1", d.mgmt_port)) as mgmt:
        mgmt.sendall(b"\x00\xff garbage\r\n" * 50 + b"quit\n")
    sender.close()

    def packets() -> float:
        return sum(
            float(v)
            for flush in sink.flushes()
            for path, v, _ in flush
            if path == "stats_counts.statsd.packets_received"
        )

    wait_until(lambda: packets() == len(sent), what=f"{len(sent)} packets counted")
    assert d.http()[0] == 200
    assert d.mgmt("health") == "health: up\n"
    assert "Traceback" not in d.log()
