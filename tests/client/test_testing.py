"""The recorder application authors use to test their own instrumentation."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

import statsd_metrics
from statsd_metrics import Client, default
from statsd_metrics.testing import Metric, Recorder


def test_recorder_captures_every_metric_of_every_client(udp, sink, monkeypatch):
    monkeypatch.setattr(default, "_client", None)
    before = udp(prefix="app", tags={"env": "test"})
    with Recorder() as recorder:
        during = Client("127.0.0.1", sink.port, buffered=False)
        before.incr("hits", 2, tags={"route": "/x"})
        before.gauge("temperature", -3)
        before.timing("latency", 1.5)
        during.set("users", "ana@example.com")
        during.decr("stock", rate=0.5)
        statsd_metrics.gauge("queue", 4, delta=True)
    during.close()
    default._client.close()
    assert recorder.metrics == [
        Metric("app.hits", "c", 2, 1.0, {"env": "test", "route": "-x"}),
        Metric("app.temperature", "g", -3, 1.0, {"env": "test"}),
        Metric("app.latency", "ms", 1.5, 1.0, {"env": "test"}),
        Metric("users", "s", "ana@example.com", 1.0, {}),
        Metric("stock", "c", -1, 0.5, {}),
        Metric("queue", "g", 4, 1.0, {}, delta=True),
    ]
    assert sink.pending() == []  # nothing reached the socket while recording


def test_clients_send_normally_again_after_recording(udp, sink):
    client = udp(buffered=False)
    with Recorder():
        client.incr("captured")
    client.incr("sent")
    assert sink.recv() == b"sent:1|c"
    assert sink.pending() == []


def test_sampled_calls_are_always_captured_with_their_rate(udp):
    client = udp(random=lambda: 0.999)
    with Recorder() as recorder:
        for _ in range(3):
            client.incr("rare", rate=0.01)
    assert [metric.rate for metric in recorder.filter("rare")] == [0.01, 0.01, 0.01]
    assert recorder.total("rare") == pytest.approx(300)


def test_assertion_helpers(udp):
    client = udp()
    with Recorder() as recorder:
        client.incr("logins", tags={"outcome": "ok", "method": "form"})
        client.gauge("players", 11)
        client.gauge("players", -1, delta=True)
        client.timing("chpp.call", 120)
        client.set("active", 42)
    recorder.assert_incr("logins", 1, tags={"outcome": "ok"})
    recorder.assert_gauge("players", 11)
    recorder.assert_gauge("players", -1, delta=True)
    assert recorder.assert_timing("chpp.call").value == 120
    recorder.assert_set("active", 42)
    recorder.assert_not_emitted("logouts")
    assert recorder.names() == ["active", "chpp.call", "logins", "players"]
    assert len(recorder.filter(type="g")) == 2
    assert recorder.filter(tags={"method": "sso"}) == []
    with pytest.raises(AssertionError, match="no 'c' metric 'logins' by 2") as info:
        recorder.assert_incr("logins", 2)
    assert "logins" in str(info.value)
    assert "players" in str(info.value)
    with pytest.raises(AssertionError):
        recorder.assert_incr("logins", tags={"outcome": "error"})
    with pytest.raises(AssertionError):
        recorder.assert_not_emitted("players")
    recorder.clear()
    assert recorder.metrics == []


def test_recorders_nest(udp):
    client = udp()
    with Recorder() as outer:
        client.incr("a")
        with Recorder() as inner:
            client.incr("b")
        client.incr("c")
    assert [m.name for m in outer.metrics] == ["a", "c"]
    assert [m.name for m in inner.metrics] == ["b"]


def test_the_recorder_sees_hostile_input_as_sanitised(udp):
    client = udp()
    with Recorder() as recorder:
        client.incr("evil:1|c\nsecond:2", tags={"x|#y": "a,b"})
    assert recorder.metrics == [Metric("evil1c_second2", "c", 1, 1.0, {"x_y": "a_b"})]


def test_the_fixture_is_registered_as_a_pytest_plugin():
    plugins = {entry.name: entry.value for entry in entry_points(group="pytest11")}
    assert plugins["statsd_metrics"] == "statsd_metrics.testing"


def test_the_fixture_records(statsd_recorder, udp):
    udp().incr("through.the.fixture")
    statsd_recorder.assert_incr("through.the.fixture")
