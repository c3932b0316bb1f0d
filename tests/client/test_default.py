"""The module-level API: usable from import time, configured from arguments or environment."""

from __future__ import annotations

import pytest

import statsd_metrics
from statsd_metrics import default


@pytest.fixture(autouse=True)
def fresh_default(monkeypatch):
    """Each test starts with no default client and leaves none behind."""
    monkeypatch.setattr(default, "_client", None)
    for name in default.ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    yield
    if default._client is not None:
        default._client.close()


# Decorated when this module is imported, long before any configure() below.
@statsd_metrics.timed("early.timed")
@statsd_metrics.counted("early.counted")
def decorated_at_import():
    return "ok"


def test_decorators_applied_before_configure_use_the_client_configured_later(sink):
    statsd_metrics.configure(port=sink.port, buffered=False)
    assert decorated_at_import() == "ok"
    first, second = sink.recv_many(2)
    assert first == b"early.counted:1|c"
    assert second.startswith(b"early.timed:")
    assert second.endswith(b"|ms")


def test_module_functions(sink):
    statsd_metrics.configure(port=sink.port, prefix="svc")
    statsd_metrics.incr("a", tags={"k": "v"})
    statsd_metrics.decr("a", 2)
    statsd_metrics.gauge("g", -3)
    statsd_metrics.gauge("g", 1, delta=True)
    statsd_metrics.timing("t", 4)
    statsd_metrics.set("s", "x")
    with statsd_metrics.timer("blk"):
        pass
    statsd_metrics.flush()
    lines = sink.recv().split(b"\n")
    assert lines[:7] == [
        b"svc.a:1|c|#k:v",
        b"svc.a:-2|c",
        b"svc.g:0|g",
        b"svc.g:-3|g",
        b"svc.g:+1|g",
        b"svc.t:4|ms",
        b"svc.s:x|s",
    ]
    assert lines[7].startswith(b"svc.blk:")


def test_environment_configures_and_arguments_override(sink, monkeypatch):
    monkeypatch.setenv("STATSD_HOST", "127.0.0.1")
    monkeypatch.setenv("STATSD_PORT", "1")  # overridden below
    monkeypatch.setenv("STATSD_PREFIX", "from.env")
    monkeypatch.setenv("STATSD_TAGS", "env:staging, region:eu")
    monkeypatch.setenv("STATSD_BUFFERED", "false")
    client = statsd_metrics.configure(port=sink.port)
    assert statsd_metrics.get_client() is client
    statsd_metrics.incr("x")
    assert sink.recv() == b"from.env.x:1|c|#env:staging,region:eu"


def test_first_use_creates_the_client_from_the_environment(sink, monkeypatch):
    monkeypatch.setenv("STATSD_PORT", str(sink.port))
    monkeypatch.setenv("STATSD_BUFFERED", "0")
    statsd_metrics.incr("lazy")
    assert sink.recv() == b"lazy:1|c"
    assert statsd_metrics.get_client() is statsd_metrics.get_client()


def test_reconfiguring_flushes_and_closes_the_previous_client(sink):
    first = statsd_metrics.configure(port=sink.port, flush_interval=3600)
    statsd_metrics.incr("old")
    second = statsd_metrics.configure(port=sink.port, prefix="new", buffered=False)
    assert sink.recv() == b"old:1|c"
    first.incr("late")
    assert first.stats()["dropped"] == {"closed": 1}
    statsd_metrics.incr("x")
    assert sink.recv() == b"new.x:1|c"
    assert statsd_metrics.get_client() is second


def test_bad_environment_never_raises(monkeypatch):
    monkeypatch.setenv("STATSD_PORT", "eighty-one-twenty-five")
    statsd_metrics.incr("x")
    assert statsd_metrics.get_client().stats()["dropped"] == {"bad_config": 1}
