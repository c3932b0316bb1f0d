"""The cluster layout on one machine: carbon-c-relay (consistent hashing) in front of two
carbon-caches, the render API reading both."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import whisper
import yaml
from graphite_render.carbonlink import CarbonLinkPool

from statsd_metrics import Client
from support.pipeline import RunningUp, graphite_config, points, wait_for

pytestmark = pytest.mark.slow

SERIES = [f"stats.timers.cluster.endpoint{n}.upper" for n in range(120)]


def locations(up: RunningUp, metric: str) -> list[str]:
    return [i for i in ("a", "b") if up.whisper_file(metric, i).exists()]


def test_every_series_lands_on_one_cache_and_reads_back_from_cache_and_whisper(
    start_up, tmp_path: Path
):
    # Recent points stay in the caches (as under load), so reads must ask the right cache.
    templates = graphite_config(
        tmp_path / "templates", CACHE_WRITE_STRATEGY="timesorted", MIN_TIMESTAMP_LAG=3600
    )
    up = start_up(
        "--caches",
        "2",
        "--aggregators",
        "0",
        "--flush-interval",
        "1",
        "--graphite-config",
        str(templates),
        instances=2,
    ).wait_ready()
    now = int(time.time())
    old = now - 7200
    up.send_plaintext([f"{m} {n} {old}" for n, m in enumerate(SERIES)])
    wait_for(lambda: all(locations(up, m) for m in SERIES), what="every Whisper file")
    up.send_plaintext([f"{m} {n + 1000} {now}" for n, m in enumerate(SERIES)])

    # Exactly once, on the cache the relay's hash ring and the render API's agree on.
    hosts = yaml.safe_load((up.data_dir / "conf" / "graphite-render.yaml").read_text())
    ring = CarbonLinkPool(hosts=hosts["carbon"]["hosts"], hashing_type="carbon_ch")
    where = {m: locations(up, m) for m in SERIES}
    assert all(len(found) == 1 for found in where.values())
    assert {m: found[0] for m, found in where.items()} == {
        m: ring.select_host(m)[1] for m in SERIES
    }
    assert {found[0] for found in where.values()} == {"a", "b"}

    # Both points of every series read back: the old from Whisper, the new from its cache.
    def read_back() -> dict[str, dict[int, float]]:
        rendered = up.render("stats.timers.cluster.*.upper", old - 1, now + 1)
        return {s["target"]: points(s) for s in rendered}

    expected = {m: {old: float(n), now: float(n + 1000)} for n, m in enumerate(SERIES)}
    wait_for(lambda: read_back() == expected, what="every point in the render API")
    # Read after the render: what it showed for `now` was not in Whisper, so the caches gave it.
    assert not any(whisper_points(up.whisper_file(m, where[m][0]), now) for m in SERIES)

    # Stopping writes every cache out; still one file per series, now holding both points.
    assert up.stop() == 0
    for n, m in enumerate(SERIES):
        assert locations(up, m) == where[m]
        assert whisper_points(up.whisper_file(m, where[m][0]), now) == {now: n + 1000}


def whisper_points(path: Path, at: int) -> dict[int, float]:
    """The Whisper file's point at `at`, if it has one."""
    (start, end, step), values = whisper.fetch(str(path), at - 1, at)
    return {ts: v for ts, v in zip(range(start, end, step), values, strict=True) if v is not None}


def test_two_aggregators_feed_the_relay_and_every_count_of_the_same_names_lands(start_up):
    # The same 40 names, each sent 60 times, alternately to the two aggregators. Before the
    # host tag both wrote stats_counts.cluster.hitsN at the same timestamps and Whisper kept
    # one of the two points: 1,200 of the 2,400 counts.
    flags = ("--caches", "2", "--aggregators", "2", "--flush-interval", "1")
    up = start_up(*flags, instances=2).wait_ready()
    assert len(up.addresses["statsd"]) == 2
    start = int(time.time()) - 1
    ports = [up.port("statsd", n) for n in range(2)]
    clients = [Client("127.0.0.1", port, prefix="cluster") for port in ports]
    for round_ in range(60):
        for n in range(40):
            clients[(round_ + n) % 2].incr(f"hits{n}")
        if round_ % 20 == 19:
            for client in clients:
                client.flush()
            time.sleep(0.3)  # spread over several flushes, as real traffic is
    for client in clients:
        client.close()
    with Client("127.0.0.1", ports[1], prefix="cluster.a1") as c1:
        for n in range(40):
            c1.gauge(f"level{n}", n)
    expected = {f"hits{n}": 60.0 for n in range(40)}

    def counted() -> dict[str, float]:
        found: dict[str, float] = {}
        # every host's series of one name, summed: the dashboards' and rules' groupByNode
        for series in up.render("groupByNode(stats_counts.cluster.*.*, 2, 'sumSeries')", start):
            found[series["target"]] = sum(points(series).values())
        return found

    wait_for(lambda: counted() == expected, what="all 2,400 counts")
    assert sum(counted().values()) == 2400
    hosts = {s["target"].rsplit(".", 1)[1] for s in up.render("stats_counts.cluster.*.*", start)}
    assert len(hosts) == 2, hosts
    assert all(h.startswith("host-") for h in hosts), hosts
    gauges = wait_for(
        lambda: (
            {s["target"] for s in up.render("stats.gauges.cluster.a1.*.*", start)}
            if len(up.render("stats.gauges.cluster.a1.*.*", start)) == 40
            else None
        ),
        what="the 40 gauges",
    )
    where = {m: locations(up, m) for m in gauges}
    assert all(len(found) == 1 for found in where.values()), where
    assert {found[0] for found in where.values()} == {"a", "b"}
    assert up.stop() == 0
