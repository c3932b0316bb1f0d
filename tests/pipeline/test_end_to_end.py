"""Client -> aggregator -> Carbon -> render API, with known values, read back twice: while the
last points are still in Carbon's cache, and from the Whisper files after `up` has stopped."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
import whisper

from statsd_metrics import Client
from support.pipeline import RunningUp, graphite_config, on_this_host, points, wait_for

pytestmark = pytest.mark.slow

# Carbon writes a point no sooner than this many seconds after its timestamp, so the last few
# flushes are always in its cache (as under load) while older ones are in Whisper.
CACHE_LAG = 4


def totals(up: RunningUp, start: int) -> dict[str, float]:
    """What the render API returns for each series, reduced the way its meaning says."""
    read = {  # `up` tags its aggregator's series with the host name (docs/metrics.md)
        "orders": ("sum", on_this_host("stats_counts.shop.orders")),
        "orders per second": ("sum", on_this_host("stats.shop.orders")),
        "checkout count": ("sum", on_this_host("stats.timers.shop.checkout", "count")),
        "checkout sum": ("sum", on_this_host("stats.timers.shop.checkout", "sum")),
        "checkout upper": ("max", on_this_host("stats.timers.shop.checkout", "upper")),
        "checkout lower": ("min", on_this_host("stats.timers.shop.checkout", "lower")),
        "visitors": ("sum", on_this_host("stats.sets.shop.visitors", "count")),
        "active users": ("last", on_this_host("stats.gauges.shop.active_users")),
        "players calls": (
            "sum",
            on_this_host("stats_counts.shop.chpp.calls", tags="endpoint=players"),
        ),
    }
    found = {}
    for label, (how, target) in read.items():
        series = up.render(target, start)
        values = [v for _, v in sorted(points(series[0]).items())] if series else []
        if values:
            found[label] = {"sum": sum, "max": max, "min": min, "last": lambda v: v[-1]}[how](
                values
            )
    return found


EXPECTED = {
    "orders": 5.0,
    "orders per second": 5.0,  # a 1 s flush: the rate equals the count
    "checkout count": 4.0,
    "checkout sum": 100.0,
    "checkout upper": 40.0,
    "checkout lower": 10.0,
    "visitors": 3.0,
    "active users": 42.0,
    "players calls": 1.0,
}


def send_known_values(port: int) -> None:
    with Client("127.0.0.1", port, prefix="shop") as client:
        client.incr("orders", 5)
        client.gauge("active_users", 42)
        for ms in (10, 20, 30, 40):
            client.timing("checkout", ms)
        for visitor in ("ana", "bo", "cy"):
            client.set("visitors", visitor)
        client.incr("chpp.calls", tags={"endpoint": "players"})


def whisper_values(path: Path, start: int) -> dict[int, float]:
    (first, end, step), values = whisper.fetch(str(path), start)
    return {ts: v for ts, v in zip(range(first, end, step), values, strict=True) if v is not None}


def test_known_values_read_back_from_carbons_cache_and_from_whisper(start_up, tmp_path: Path):
    templates = graphite_config(
        tmp_path / "templates", CACHE_WRITE_STRATEGY="timesorted", MIN_TIMESTAMP_LAG=CACHE_LAG
    )
    args = ("--flush-interval", "1", "--graphite-config", str(templates))
    up = start_up(*args).wait_ready()
    start = int(time.time()) - 1
    send_known_values(up.port("statsd"))

    assert wait_for(lambda: totals(up, start) == EXPECTED, what="the values") is True

    # From the cache: the gauge gets a point every flush, and its newest ones are not in Whisper
    # yet. Whisper is read after the render API, so what it lacks came from carbonlink. (Right
    # after carbon writes the gauge its cache holds nothing for it, for up to a flush: poll.)
    gauge = on_this_host("stats.gauges.shop.active_users")

    def served_from_cache() -> dict[int, float]:
        rendered = points(up.render(gauge, start)[0])
        on_disk = whisper_values(up.whisper_file(gauge), start)
        return {ts: v for ts, v in rendered.items() if ts not in on_disk}

    from_cache = wait_for(served_from_cache, what="gauge points only in carbon's cache")
    assert set(from_cache.values()) == {42.0}

    # The last flush: sent just before SIGTERM, delivered by the aggregator's final flush,
    # written by carbon's shutdown drain.
    with Client("127.0.0.1", up.port("statsd"), prefix="shop") as client:
        client.incr("late", 7)
    time.sleep(0.2)
    assert up.stop(signal.SIGTERM) == 0
    late = whisper_values(up.whisper_file(on_this_host("stats_counts.shop.late")), start)
    assert sum(late.values()) == 7.0

    # From Whisper alone: every value, read straight from the files and through a render API
    # started afresh on the same data (no cache left to ask).
    orders = on_this_host("stats_counts.shop.orders")
    files = {
        "orders": sum(whisper_values(up.whisper_file(orders), start).values()),
        "active users": max(whisper_values(up.whisper_file(gauge), start).items())[1],
    }
    assert files == {"orders": 5.0, "active users": 42.0}
    reader = start_up("--aggregators", "0", *args, data_dir=up.data_dir).wait_ready()
    assert totals(reader, start) == EXPECTED
