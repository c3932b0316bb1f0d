"""Migrating moves no series: for any name, what our client sends and our aggregator stores
is the path that the `statsd` package's line gets from the reference daemon.

The reference's rules are written here a second time, from its documented behaviour (ingress
split at `\\n`, `|#`, `:`, then keyNameSanitize with JavaScript's `\\s`; the legacy Graphite
namespace), independently of aggregator/ and of statsd_metrics/wire.py, as the oracle.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator

import pytest
import statsd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregator.config import Config
from aggregator.naming import Namer
from aggregator.parse import Parser
from aggregator.state import Interval
from statsd_metrics import Client

PREFIX = "app"
JS_WHITESPACE = re.compile(
    "[\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]+"
)


def reference_sanitize(key: str) -> str:
    """keyNameSanitize: whitespace runs -> `_`, `/` -> `-`, delete the rest of the disallowed."""
    key = JS_WHITESPACE.sub("_", key).replace("/", "-")
    return re.sub(r"[^A-Za-z0-9_.\-;=]", "", key)


def reference_counter_paths(packet: str) -> set[str]:
    """The `stats_counts.` paths the reference writes for the counters of one packet."""
    paths = set()
    for line in packet.split("\n"):
        if not line:
            continue
        metric, *tag_parts = line.split("|#")
        tags = [
            tag.replace(";", "_", 1).replace(":", "=", 1)
            for tag in (tag_parts[0].split(",") if tag_parts and tag_parts[0] else [])
        ]
        key, *groups = metric.split(":")
        key = reference_sanitize(";".join([key, *tags]))
        for group in groups:
            fields = group.split("|")
            if len(fields) >= 2 and fields[1].strip() == "c":
                name, sep, tag_text = key.partition(";")
                paths.add(f"stats_counts.{name}" + (f";{tag_text}" if sep else ""))
    return paths


def whole_name_path(name: str) -> str:
    """Where the reference would store `name` if the line could carry it whole."""
    return reference_counter_paths(f"{reference_sanitize(PREFIX + '.' + name)}:1|c").pop()


def aggregator_counter_paths(packet: bytes) -> set[str]:
    """What our aggregator (parse, then naming) writes for the counters of one packet."""
    config = Config()
    interval = Interval()
    Parser(config).feed(packet, interval)
    assert not interval.rejects, interval.rejects
    namer = Namer(config)
    return {namer.counter(key)[1] for key in interval.counters}


class Senders:
    """Both clients, unbuffered, to one real UDP socket."""

    def __init__(self) -> None:
        self.sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sink.bind(("127.0.0.1", 0))
        self.sink.settimeout(2.0)
        port = self.sink.getsockname()[1]
        self.ours = Client("127.0.0.1", port, PREFIX, buffered=False)
        self.theirs = statsd.StatsClient("127.0.0.1", port, PREFIX)

    def pending(self) -> list[bytes]:
        self.sink.setblocking(False)
        try:
            received = []
            while True:
                received.append(self.sink.recv(65535))
        except BlockingIOError:
            return received
        finally:
            self.sink.settimeout(2.0)

    def close(self) -> None:
        self.ours.close()
        self.theirs.close()
        self.sink.close()


@pytest.fixture(scope="module")
def senders() -> Iterator[Senders]:
    both = Senders()
    yield both
    both.close()


def _breaks_the_statsd_line(name: str) -> bool:
    """The `statsd` package writes names unescaped: these split its line."""
    return ":" in name or "\n" in name or "|#" in name


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(name=st.text(st.characters(max_codepoint=127), max_size=40))
def test_any_name_the_statsd_package_sends_is_stored_under_the_same_path(senders, name):
    before = senders.ours.stats()["dropped_total"]
    senders.theirs.incr(name)
    theirs = senders.sink.recv(65535).decode("ascii")
    senders.ours.incr(name)
    sent = senders.pending()
    if not sent:  # rejected: only when the reference would keep nothing of the name either
        assert senders.ours.stats()["dropped_total"] == before + 1
        assert reference_sanitize(name) == ""
        return
    (ours,) = sent
    if not _breaks_the_statsd_line(name):
        assert aggregator_counter_paths(ours) == reference_counter_paths(theirs)
    assert aggregator_counter_paths(ours) == {whole_name_path(name)}


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(name=st.text(max_size=30))
def test_names_the_statsd_package_cannot_send_are_stored_as_the_reference_would(senders, name):
    """Non-ASCII names (the package raises UnicodeEncodeError): what the reference would
    store from the UTF-8 bytes, or a counted rejection when it would keep nothing."""
    before = senders.ours.stats()["dropped_total"]
    senders.ours.incr(name)
    sent = senders.pending()
    if sent:
        assert aggregator_counter_paths(sent[0]) == {whole_name_path(name)}
    else:
        assert senders.ours.stats()["dropped_total"] == before + 1


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("api.users(get)", "stats_counts.app.api.usersget"),
        ("x..y", "stats_counts.app.x..y"),
        ("api/users list", "stats_counts.app.api-users_list"),
        ("café", "stats_counts.app.caf"),
        ("a:b|c@d#e", "stats_counts.app.abcde"),
        ("requests,route=home", "stats_counts.app.requestsroute=home"),
        ("line\nbreak", "stats_counts.app.line_break"),
        ("k;tag=v", "stats_counts.app.k;tag=v"),
        ("api users\n list", "stats_counts.app.api_users_list"),
        ("api/users", "stats_counts.app.api-users"),
        ("a\x00b", "stats_counts.app.ab"),
    ],
)
def test_examples_from_the_naming_table(senders, name, path):
    senders.ours.incr(name)
    (sent,) = senders.pending()
    assert aggregator_counter_paths(sent) == {path}
