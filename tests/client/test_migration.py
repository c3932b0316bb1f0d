"""What code written for `statsd`, datadog's `DogStatsd` or `markus` relies on: pipelines, the
Timer object, DogStatsD's names and tag lists, default names that do not depend on how the
process started, and rejections that never log the rejected value."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import textwrap

import pytest

import statsd_metrics
from statsd_metrics import Client, Pipeline
from statsd_metrics.instruments import default_name
from statsd_metrics.testing import Recorder


@pytest.fixture
def tick(clock, monkeypatch):
    monkeypatch.setattr(statsd_metrics.instruments, "perf_counter", clock)
    return clock.advance


# -- pipelines ---------------------------------------------------------------------------


def test_a_pipeline_is_one_datagram_and_sends_once(udp, sink):
    client = udp(buffered=False, prefix="app")
    pipe = client.pipeline()
    assert isinstance(pipe, Pipeline)
    pipe.incr("a")
    pipe.gauge("g", -2)
    pipe.set("s", 1.5)
    assert sink.pending() == []  # nothing before send()
    pipe.send()
    assert sink.pending() == [b"app.a:1|c\napp.g:0|g\napp.g:-2|g\napp.s:1.5|s"]
    pipe.send()
    assert sink.pending() == []
    assert client.stats()["sent_payloads"] == 1


def test_a_pipeline_splits_at_maxudpsize_without_cutting_a_line(sink, make_client):
    client = make_client("127.0.0.1", sink.port, None, 24, buffered=False)
    with client.pipeline() as pipe:
        for name in ("aaaaaaa", "bbbbbbb", "ccccccc"):
            pipe.incr(name)
    assert sink.pending() == [b"aaaaaaa:1|c\nbbbbbbb:1|c", b"ccccccc:1|c"]


def test_a_buffered_pipeline_leaves_in_one_payload_at_the_flush(udp, sink):
    client = udp()
    client.incr("before")
    with client.pipeline() as pipe:
        pipe.incr("x")
        pipe.incr("y")
    client.flush()
    assert sink.pending() == [b"before:1|c\nx:1|c\ny:1|c"]


def test_nested_pipelines_and_timers_send_into_the_parent(udp, sink, tick):
    client = udp(buffered=False)
    with client.pipeline() as outer:
        with outer.timer("t"):
            tick(0.002)
        with outer.pipeline() as inner:
            inner.incr("inner")
        assert sink.pending() == []
    assert sink.pending() == [b"t:2.000|ms\ninner:1|c"]


def test_a_pipeline_is_recorded_like_the_client(udp):
    client = udp()
    with Recorder() as recorder, client.pipeline() as pipe:
        pipe.incr("a", tags={"k": "v"})
    recorder.assert_incr("a", tags={"k": "v"})


def test_a_pipeline_of_a_closed_client_counts_its_lines(udp, sink):
    client = udp()
    client.close()
    with client.pipeline() as pipe:
        pipe.incr("a")
        pipe.incr("b")
    assert client.stats()["dropped"] == {"closed": 2}


# -- the Timer object ------------------------------------------------------------------


def test_timer_object_stop_without_sending_then_send(udp, sink, tick):
    client = udp(buffered=False)
    timer = client.timer("span").start()
    tick(0.25)
    assert timer.stop(send=False) is timer
    assert timer.ms == 250.0
    assert sink.pending() == []
    timer.send()
    assert sink.pending() == [b"span:250.000|ms"]


def test_timer_misuse_never_raises_and_is_counted(udp, sink, tick):
    client = udp(buffered=False)
    client.timer("never.started").stop()
    client.timer("never.stopped").start().send()
    timer = client.timer("twice").start()
    tick(0.001)
    timer.stop()
    timer.send()
    assert sink.pending() == [b"twice:1.000|ms"]
    assert client.stats()["dropped"] == {"bad_timer": 3}


@pytest.fixture
def fresh_default(monkeypatch):
    """No default client before the test, none left behind."""
    monkeypatch.setattr(statsd_metrics.default, "_client", None)
    yield
    if statsd_metrics.default._client is not None:
        statsd_metrics.default._client.close()


def test_module_level_timer_object(fresh_default, sink, tick):
    statsd_metrics.configure(host="127.0.0.1", port=sink.port, buffered=False)
    timer = statsd_metrics.timer("module.span").start()
    tick(0.5)
    timer.stop()
    assert sink.pending() == [b"module.span:500.000|ms"]
    statsd_metrics.timer("module.bad").send()
    assert statsd_metrics.get_client().stats()["dropped"] == {"bad_timer": 1}


# -- constructor, rates, sets ----------------------------------------------------------


def test_statsd_constructor_positions(sink, make_client):
    client = make_client("127.0.0.1", sink.port, "app", 512, False, buffered=False)
    assert client._max_size == 512
    client.incr("x")
    assert sink.recv() == b"app.x:1|c"


def test_timeout_none_is_the_statsd_default_and_works(udp, sink):
    client = udp(buffered=False, timeout=None)
    client.incr("x", rate=2)  # 1 or more: sent, unsampled
    client.incr("y", rate=1.0)
    client.set("z", 2.3)
    assert sink.pending() == [b"x:1|c", b"y:1|c", b"z:2.3|s"]
    assert client.stats()["dropped"] == {}


def test_ipv6_true_uses_ipv6_only(make_client):
    calls = []

    def resolver(host, port, family, kind):
        calls.append(family)
        return []

    client = make_client("localhost", 8125, None, None, True, resolver=resolver, buffered=False)
    assert calls == [socket.AF_INET6]
    assert {family for family, _ in client._transport.candidates} == {socket.AF_INET6}


# -- DogStatsD and markus --------------------------------------------------------------


def test_dogstatsd_names_and_tag_lists(udp, sink):
    client = udp(buffered=False)
    client.increment("page.views", tags=["env:prod", "canary"])
    client.decrement("queue", 2, ["q:mail"])
    client.histogram("payload.bytes", 512, tags=["route:home"])
    client.distribution("latency", 0.25, sample_rate=1)
    client.gauge("load", 3, ["host:a"])  # tags where `statsd` has the rate: DogStatsD's order
    client.incr("markus.style", 1, ["k:v"])  # markus: incr(stat, value, tags)
    assert sink.pending() == [
        b"page.views:1|c|#canary,env:prod",
        b"queue:-2|c|#q:mail",
        b"payload.bytes:512|ms|#route:home",
        b"latency:0.25|ms",
        b"load:3|g|#host:a",
        b"markus.style:1|c|#k:v",
    ]


def test_a_negative_histogram_value_is_rejected(udp, sink):
    client = udp(buffered=False)
    client.histogram("h", -1)
    assert client.stats()["dropped"] == {"bad_value": 1}
    assert sink.pending() == []


# -- rejected values are never logged ----------------------------------------------------


def test_rejected_values_are_logged_by_type_and_length_only(udp, caplog):
    secret = "probe-7731@example.org"
    client = udp(buffered=False)
    with caplog.at_level(logging.DEBUG, logger="statsd_metrics"):
        client.incr("x", secret)
        client.gauge("x", secret)
        client.timing("x", secret)
        client.set("x", [secret])
        client.incr("x", rate=secret)
        client.incr("x", tags=[secret.encode()])
        client.incr(secret.replace("probe", ":|@#").replace("-7731@example.org", ""))
        client.incr(f"{secret}:", secret)
    logged = caplog.text
    assert "bad_value" in logged
    assert "bad_rate" in logged
    assert "bad_tags" in logged
    assert "str of length 22" in logged
    assert secret not in logged
    assert "probe" not in logged
    assert "example" not in logged


# -- default names -----------------------------------------------------------------------


def test_default_name_of_an_importable_function():
    assert default_name(default_name) == "statsd_metrics.instruments.default_name"


@pytest.mark.parametrize("how", ["script", "module"])
def test_default_names_do_not_depend_on_how_the_process_started(tmp_path, how):
    package = tmp_path / "shop"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "app.py").write_text(
        textwrap.dedent(
            """
            import statsd_metrics
            from statsd_metrics.instruments import default_name

            def handler():
                pass

            if __name__ == "__main__":
                print(default_name(handler))
            """
        )
    )
    command = [sys.executable, str(package / "app.py")]
    if how == "module":
        command = [sys.executable, "-m", "shop.app"]
    inherited = [os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *inherited])}
    result = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30, check=True
    )
    assert result.stdout.strip() == "shop.app.handler"  # as `import shop.app` names it


def test_a_client_with_a_list_of_constant_tags(sink, make_client):
    client = make_client("127.0.0.1", sink.port, tags=["env:prod", "blue"], buffered=False)
    client.incr("x")
    assert sink.recv() == b"x:1|c|#blue,env:prod"


def test_client_class_is_what_statsd_compat_exports():
    from statsd_metrics import compat

    assert compat.StatsClient is Client
    assert issubclass(compat.TCPStatsClient, Client)


def test_a_sampled_negative_gauge_pair_carries_no_rate(udp, sink):
    client = udp(buffered=False, random=lambda: 0.0)
    client.gauge("g", -1, rate=0.5)
    client.gauge("h", 1, rate=0.5)
    assert sink.pending() == [b"g:0|g\ng:-1|g", b"h:1|g|@0.5"]


def test_markus_timer_and_timer_decorator_take_tags_second(udp, sink, tick):
    client = udp(buffered=False)
    with client.timer("block", ["k:v"]):
        tick(0.001)

    @client.timer_decorator("call", ["k:w"])
    def call() -> None:
        tick(0.002)

    call()
    assert sink.pending() == [b"block:1.000|ms|#k:v", b"call:2.000|ms|#k:w"]
