"""User-controlled strings cannot inject metrics: not through the client's names, tags or set
members, not through what an HTTP client puts in a request to a Flask app.

The client's own tests check its lines against a model of the reference daemon's parsing;
these check them against what actually reads them: our aggregator's parser and flush, in
process (hypothesis) and live over UDP.
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregator.config import from_mapping
from aggregator.flush import Flush
from aggregator.naming import Namer, sanitize
from aggregator.parse import Parser
from aggregator.state import Interval, Store
from statsd_metrics import Client, shared_gauge
from statsd_metrics.flask import EXTENSION, StatsdMetrics
from statsd_metrics.wire import Rejected, sanitize_name, sanitize_tag

HOSTILE = [
    "a:1|c\nb:2|c", "x|#evil:1", "t:1|ms|@0.0001", "../../etc/passwd", "name with spaces",
    "über.ñame", "\x00\x01\x7f", "a" * 300, "….", "a;b=c", "k=v", "%0a", "\r\nstats.x 1 1",
    "#", "@", ",", "|", ":", "é" * 40,
]  # fmt: skip


def captured(calls) -> list[str]:
    """The exact lines a client writes for `calls(client)`, read from its socket's peer. (Not
    the test recorder: that takes every live client's lines, other tests' among them.)"""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        with Client("127.0.0.1", sink.getsockname()[1], prefix="app") as client:
            calls(client)  # closing flushes; loopback delivers before sendto returns
        sink.setblocking(False)
        datagrams = []
        with contextlib.suppress(BlockingIOError):
            while True:
                datagrams.append(sink.recv(65536).decode("ascii"))
    return [line for datagram in datagrams for line in datagram.split("\n")]


@settings(max_examples=300, deadline=None)
@given(
    name=st.text(max_size=40) | st.sampled_from(HOSTILE),
    tags=st.dictionaries(st.text(max_size=15) | st.sampled_from(HOSTILE),
                         st.text(max_size=15) | st.sampled_from(HOSTILE), max_size=4),
    member=st.text(min_size=1, max_size=30) | st.sampled_from(HOSTILE),
    config=st.sampled_from([{}, {"tag_mode": "path"}]),
)  # fmt: skip
def test_one_call_is_one_metric_of_one_series_whatever_the_strings(name, tags, member, config):
    try:
        sent = "app." + sanitize_name(name)
    except Rejected:
        return  # dropped by the client (bad_name), counted there: nothing reaches the wire
    # The name is stored as the reference daemon stores it (docs/naming.md): a `;` in it
    # starts Graphite tags there too, so the tag checks below are for names without one.
    head, name_tags, _ = sanitize(sent).partition(";")
    lines = captured(lambda c: (c.incr(name, tags=tags), c.set(name, member, tags=tags)))
    parser, iv = Parser(from_mapping(config)), Interval()
    parser.feed("\n".join(lines).encode(), iv)
    assert (iv.metrics, iv.bad) == (2, 0)  # two calls, two metrics, nothing rejected
    [key] = iv.counters  # one series, the same for both calls
    assert list(iv.sets) == [key]
    assert len(iv.sets[key]) == 1
    name_part, *tag_parts = key.split(";")
    assert name_part == head  # the name is the name: no tag or value leaks into it
    if name_tags:
        return
    assert len(tag_parts) == len({sanitize_tag(k) for k in tags})
    # In Graphite, the tags are Graphite tags, or (path mode) all in exactly one level.
    store, flush = Store(), Flush(from_mapping(config))
    store.merge([iv], "statsd", None)
    paths = [line.split(" ")[0] for line in b"".join(flush(store, 1).payload).decode().split("\n")]
    [count] = [p for p in paths if p.startswith("stats_counts.app.")]
    path, _, graphite_tags = count.partition(";")
    if config:
        assert path.startswith(f"stats_counts.{head}")
        assert path.count(".") == head.count(".") + 1 + (1 if tag_parts else 0)
        assert not graphite_tags
    else:
        assert path == f"stats_counts.{head}"
        assert graphite_tags.count(";") == max(0, len(tag_parts) - 1)


@pytest.mark.slow
def test_hostile_strings_through_a_live_aggregator_make_exactly_the_expected_series(
    start_daemon, sink
):
    config = {"tag_mode": "path"}  # as `statsd-metrics up` runs it
    d = start_daemon(config)
    names = {stored(n, config) for n in HOSTILE} - {None}
    with Client("127.0.0.1", d.port, prefix="inj") as client:
        for text in HOSTILE:
            client.incr(text)
            client.set("members", text)
            client.incr("tagged", tags={text: text})
        client.flush()
        dropped = client.stats()["dropped_total"]
    after = sink.next_flush()
    flush = sink.wait_flush(lambda f: "stats.sets.inj.members.count" in f, after - 1)
    counters = {
        p.removeprefix("stats_counts.inj.") for p in flush if p.startswith("stats_counts.inj.")
    }
    tagged = {p for p in counters if p.startswith("tagged.")}
    assert counters - tagged == names  # one series per distinct name, nothing else
    assert len(tagged) == len({sanitize_tag(t) for t in HOSTILE})
    assert all(p.count(".") == 1 for p in tagged)  # tagged.<key>-<value>: one level, no more
    assert flush["stats.sets.inj.members.count"] == str(len(set(HOSTILE)))  # distinct stay so
    received = float(flush["stats_counts.statsd.metrics_received"])
    assert (flush["stats_counts.statsd.bad_lines_seen"], received) == (
        "0",
        3 * len(HOSTILE) - dropped,
    )


def stored(name: str, config: dict) -> str | None:
    """The counter path the name gets under `stats_counts.inj.`; None if the client drops it."""
    try:
        key = sanitize("inj." + sanitize_name(name))
    except Rejected:
        return None
    return Namer(from_mapping(config)).counter(key)[1].removeprefix("stats_counts.inj.")


def hostile_app() -> Flask:
    app = Flask("shop")

    @app.get("/items/<item_id>")
    def item(item_id: str):
        return {"id": item_id}

    @app.post("/upload")
    def upload():
        return "ok"

    return app


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    # PATH_INFO as servers give it: the request's bytes, decoded as latin-1.
    path=st.binary(max_size=60).map(lambda b: b.decode("latin-1"))
    | st.sampled_from(["/items/" + h.encode().decode("latin-1") for h in HOSTILE]),
    method=st.sampled_from(["GET", "POST", "DELETE", "GET.evil", "X;y=z", "get:1|c", "ÜBER"]),
    length=st.sampled_from([None, "0", "12", "²", "١٢", "-1", "1e3", "99999999999999999999"]),
)
def test_no_request_names_a_metric_beyond_the_apps_routes(path, method, length):
    app = hostile_app()
    lines = []

    def serve(client: Client) -> None:
        StatsdMetrics(app, client=client)
        environ = {"PATH_INFO": "/" + path.lstrip("/"), "REQUEST_METHOD": method}
        if length is not None:
            environ["CONTENT_LENGTH"] = length
        app.test_client().open("/", environ_overrides=environ)
        route = app.extensions[EXTENSION].routes
        lines.append(sum(r.in_flight.level for r in route.values()))
        shared_gauge.report_all()

    wire = captured(serve)
    assert lines == [0]  # whatever the request, nothing stays in flight
    allowed = r"app\.http\.(item|upload|unmatched)\.(latency|status\.[1-5]xx\.\d{3}|" \
              r"request_bytes|response_bytes|in_flight)"  # fmt: skip
    assert all(re.fullmatch(allowed, line.split(":")[0]) for line in wire)


def test_a_malformed_content_length_is_measured_and_leaves_nothing_in_flight(caplog):
    app = hostile_app()
    with caplog.at_level(logging.ERROR):
        wire = captured(
            lambda c: (
                StatsdMetrics(app, client=c),
                app.test_client().post("/upload", data=b"x", environ_overrides={
                    "CONTENT_LENGTH": "²"}),  # werkzeug's server passes it on as sent
                shared_gauge.report_all(),
            )
        )  # fmt: skip
    names = {line.split(":")[0] for line in wire}
    assert {"app.http.upload.latency", "app.http.upload.status.2xx.200"} <= names
    assert "app.http.upload.request_bytes" not in names
    assert not [line for line in wire if line.startswith("app.http.upload.in_flight:+")]
    assert "hook failed" not in caplog.text
