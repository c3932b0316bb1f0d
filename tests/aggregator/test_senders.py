"""Real third-party senders against the live aggregator: what reaches a fake Carbon, exactly.

The datadog package (DogStatsd: container id, external data, cardinality, timestamps,
distributions, events, service checks), npm hot-shots (DogStatsD tags, and its Telegraf mode
with the tags in the name) and Telegraf-style lines sent raw. Each test sends everything into
one interval of a daemon whose first flush is far away, waits until a last marker counter is
visible through the management port (one receiving process, so everything before it has been
parsed), then stops the daemon: the final flush is the one flush to check.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time

import pytest
from datadog.dogstatsd import DogStatsd

from .conftest import ROOT, WAIT, Daemon, wait_until

NODE_DIR = ROOT / "tests" / "node"
CONFIG = {"receivers": 1}
FLUSH = 100.0  # seconds: no flush comes before the final one


def flush_of(daemon: Daemon) -> dict[str, str]:
    """Stop the daemon; its final flush as {path: value} (the only flush it wrote)."""
    assert daemon.stop() == 0
    flushes = daemon.sink.flushes()
    assert len(flushes) == 1, daemon.log()
    return {path: value for path, value, _ in flushes[0]}


def wait_for_marker(daemon: Daemon) -> None:
    def seen() -> bool:
        return "marker" in json.loads(daemon.mgmt("counters").partition("\nEND")[0])

    wait_until(seen, what="the marker counter")


def send_marker(daemon: Daemon) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"marker:1|c", ("127.0.0.1", daemon.port))


def metrics(values: dict[str, str]) -> dict[str, str]:
    """The flush without the aggregator's own series and the marker."""
    own = ("stats.statsd.", "stats_counts.statsd.", "statsd.", "stats.gauges.statsd.")
    return {
        path: value
        for path, value in values.items()
        if not path.startswith(own) and "marker" not in path
    }


def timer(path: str, tags: str, value: int) -> dict[str, str]:
    """Every field of a timer that saw one value in a 100 s interval (percent_thresholds 90)."""
    v, sq = str(value), str(value * value)
    fields = {"count_90": "1", "mean_90": v, "upper_90": v, "sum_90": v, "sum_squares_90": sq}
    fields |= {"std": "0", "upper": v, "lower": v, "count": "1", "count_ps": "0.01", "sum": v}
    fields |= {"sum_squares": sq, "mean": v, "median": v}
    return {f"stats.timers.{path}.{field}{tags}": value for field, value in fields.items()}


def test_the_datadog_package(start_daemon, monkeypatch):
    daemon = start_daemon(CONFIG, flush=FLUSH)
    monkeypatch.setenv("DD_EXTERNAL_ENV", "it-false,cn-web,pu-1234")
    dd = DogStatsd(
        host="127.0.0.1",
        port=daemon.port,
        namespace="dd",
        constant_tags=["env:prod"],
        container_id="abc123",
        disable_telemetry=True,
    )
    now = int(time.time())
    dd.increment("page.views", tags=["route:home"])
    dd.increment("page.views", 2, tags=["route:home"], cardinality="low")
    dd.decrement("queue")
    dd.gauge_with_timestamp("queue.depth", 7, now - 5)
    dd.count_with_timestamp("jobs.done", 3, now - 5)
    dd.distribution("latency", 12, tags=["route:home"])
    dd.distribution("latency", 30, tags=["route:home"])
    dd.histogram("size", 100)
    dd.timing("t", 5)
    dd.set("users", "u1")
    dd.set("users", "u2")
    dd.event("Deploy", "v1.2 to prod\nsecond line", alert_type="info", tags=["team:web"])
    dd.service_check("db.up", 0, tags=["db:main"], message="fine")
    dd.flush()
    dd.close_socket()
    send_marker(daemon)
    wait_for_marker(daemon)
    values = flush_of(daemon)

    env, home = ";env=prod", ";route=home;env=prod"
    expected = {
        f"stats.dd.page.views{home}": "0.03",
        f"stats_counts.dd.page.views{home}": "3",
        f"stats.dd.queue{env}": "-0.01",
        f"stats_counts.dd.queue{env}": "-1",
        f"stats.dd.jobs.done{env}": "0.03",  # the timestamp is ignored: this interval's
        f"stats_counts.dd.jobs.done{env}": "3",
        f"stats.gauges.dd.queue.depth{env}": "7",
        f"stats.sets.dd.users.count{env}": "2",
        **timer("dd.size", env, 100),
        **timer("dd.t", env, 5),
    }
    latency = {"count_90": "2", "mean_90": "21", "upper_90": "30", "sum_90": "42"}
    latency |= {"sum_squares_90": "1044", "std": "9", "upper": "30", "lower": "12", "count": "2"}
    latency |= {"count_ps": "0.02", "sum": "42", "sum_squares": "1044", "mean": "21"}
    latency |= {"median": "21"}
    expected |= {f"stats.timers.dd.latency.{k}{home}": v for k, v in latency.items()}
    assert metrics(values) == expected
    # 11 metric lines, each with a container id and external data, one with a cardinality,
    # two with a timestamp; one event, one service check; nothing bad
    assert values["stats_counts.statsd.ignored_fields.container_id"] == "11"
    assert values["stats_counts.statsd.ignored_fields.external_data"] == "11"
    assert values["stats_counts.statsd.ignored_fields.cardinality"] == "1"
    assert values["stats_counts.statsd.ignored_fields.timestamp"] == "2"
    assert values["stats_counts.statsd.events_received"] == "1"
    assert values["stats_counts.statsd.service_checks_received"] == "1"
    assert values["stats_counts.statsd.bad_lines_seen"] == "0"
    assert values["stats_counts.statsd.metrics_received"] == "14"  # the marker included


def hot_shots(port: int, mode: str) -> None:
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    if not (NODE_DIR / "node_modules" / "hot-shots").is_dir():
        pytest.fail("npm hot-shots is missing: run `make node-deps`")
    subprocess.run(
        ["node", "hot_shots_send.js", str(port), mode], cwd=NODE_DIR, check=True, timeout=WAIT
    )


HOT_SHOTS_METRICS = {
    "stats.hs.requests;env=prod;route=home": "0.03",
    "stats_counts.hs.requests;env=prod;route=home": "3",
    "stats.hs.queue;env=prod": "-0.03",
    "stats_counts.hs.queue;env=prod": "-3",
    "stats.gauges.hs.workers;env=prod;pool=a": "8",
    "stats.sets.hs.users.count;env=prod": "2",
    **timer("hs.latency", ";env=prod;route=home", 42),
    **timer("hs.size", ";env=prod", 100),
    **timer("hs.render", ";env=prod", 7),
}


@pytest.mark.parametrize("mode", ["dogstatsd", "telegraf"])
def test_npm_hot_shots_with_tags(start_daemon, mode: str):
    """Its DogStatsD tags and its Telegraf mode (tags in the name) give the same series."""
    daemon = start_daemon(CONFIG, flush=FLUSH)
    hot_shots(daemon.port, mode)
    send_marker(daemon)
    wait_for_marker(daemon)
    values = flush_of(daemon)
    assert metrics(values) == HOT_SHOTS_METRICS
    assert values["stats_counts.statsd.bad_lines_seen"] == "0"
    if mode == "dogstatsd":
        assert values["stats_counts.statsd.events_received"] == "1"
        assert values["stats_counts.statsd.service_checks_received"] == "1"


def test_telegraf_style_lines_sent_raw(start_daemon):
    daemon = start_daemon(CONFIG, flush=FLUSH)
    lines = [
        b"requests,route=home,method=get:1|c",
        b"requests,route=home:1|c|#method:get",  # both styles in one line
        b"requests:1|c|#route:home,method:get",
        b"latency,route=home:12|ms\nlatency,route=home:30|ms|@0.5",
        b"temp,room=kitchen,floor=1:21.5|g",
        b"visitors,site=a:alice|s\nvisitors,site=a:bob|s",
        b"flag,canary:1|c",
    ]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for line in lines:
            s.sendto(line, ("127.0.0.1", daemon.port))
    send_marker(daemon)
    wait_for_marker(daemon)
    values = flush_of(daemon)
    tags = ";route=home"
    latency = {"count_90": "2", "mean_90": "21", "upper_90": "30", "sum_90": "42"}
    latency |= {"sum_squares_90": "1044", "std": "9", "upper": "30", "lower": "12", "count": "3"}
    latency |= {"count_ps": "0.03", "sum": "42", "sum_squares": "1044", "mean": "21"}
    latency |= {"median": "21"}
    assert metrics(values) == {
        "stats.requests;route=home;method=get": "0.03",
        "stats_counts.requests;route=home;method=get": "3",
        "stats.gauges.temp;room=kitchen;floor=1": "21.5",
        "stats.sets.visitors.count;site=a": "2",
        "stats.flag;canary": "0.01",
        "stats_counts.flag;canary": "1",
        **{f"stats.timers.latency.{k}{tags}": v for k, v in latency.items()},
    }
    assert values["stats_counts.statsd.bad_lines_seen"] == "0"
