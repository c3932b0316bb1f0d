"""Grafana's Graphite datasource against the running pipeline (`up` with the shipped config).

Carbon is fed Graphite plaintext directly with known values over two whole minutes, then every
request the datasource sends (shared reference: grafana-graphite-requests.md) is replayed and its
answer checked for shape (what Grafana parses) and values.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator

import pytest
from carbon.hashing import ConsistentHashRing

from support.pipeline import RunningUp, points, wait_for

pytestmark = pytest.mark.slow

SECONDS = 120


def on_a_ring_entry(prefix: str) -> str:
    """A series name whose hash is exactly a carbonlink ring entry of cache `a` (stock
    graphite-render 1.1.8 answers 500 for it; see statsd_metrics/graphite/whisper_finder.py)."""
    ring = ConsistentHashRing([("127.0.0.1", "a")])
    positions = {position for position, _ in ring.ring}
    names = (f"{prefix}{n}" for n in itertools.count())
    return next(name for name in names if ring.compute_ring_position(name) in positions)


ON_A_RING_ENTRY = on_a_ring_entry("stats.gauges.shop.queue")


class Data:
    """Two whole minutes of one-second points, ending at a minute boundary in the past."""

    def __init__(self) -> None:
        self.end = (int(time.time()) - 60) // 60 * 60
        self.start = self.end - SECONDS
        self.timestamps = range(self.start, self.end)
        self.series = {
            "stats_counts.shop.orders": dict.fromkeys(self.timestamps, 2.0),
            "stats_counts.shop.refunds": dict.fromkeys(self.timestamps, 1.0),
            "stats.shop.orders": dict.fromkeys(self.timestamps, 2.0),
            "stats.timers.shop.checkout.upper": {ts: float(ts % 7) for ts in self.timestamps},
            "stats.timers.shop.checkout.mean": dict.fromkeys(self.timestamps, 50.0),
            "stats.gauges.shop.active_users": {
                ts: 40.0 + (ts - self.start) // 60 for ts in self.timestamps
            },
            ON_A_RING_ENTRY: dict.fromkeys(self.timestamps, 7.0),
        }

    def plaintext(self) -> list[str]:
        return [
            f"{name} {value:g} {ts}"
            for name, values in self.series.items()
            for ts, value in values.items()
        ]


@pytest.fixture(scope="module")
def data() -> Data:
    return Data()


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory, data: Data) -> Iterator[RunningUp]:
    running = RunningUp(
        tmp_path_factory.mktemp("grafana") / "var",
        "--aggregators",
        "0",
        "--flush-interval",
        "1",
    )

    def stored(name: str) -> bool:
        # Whisper returns the points after `from`, hence the second before the first point.
        return any(len(points(s)) == SECONDS for s in running.render(name, data.start - 1))

    try:
        running.wait_ready()
        running.send_plaintext(data.plaintext())
        for name in data.series:
            wait_for(lambda name=name: stored(name), what=f"{name} in the render API")
        yield running
    finally:
        assert running.stop() == 0, running.stderr()


def assert_grafana_series(series: object) -> None:
    """What Grafana's parser needs: name, [value|null, int seconds] ascending, no null time."""
    assert isinstance(series, dict)
    assert isinstance(series["target"], str)
    stamps = [ts for _, ts in series["datapoints"]]
    assert all(isinstance(ts, int) for ts in stamps)
    assert stamps == sorted(stamps)
    assert all(v is None or isinstance(v, int | float) for v, _ in series["datapoints"])


def by_ref_id(response: list[dict]) -> dict[str, list[dict]]:
    """Grafana splits each returned name on its last space to find the query's refId."""
    found: dict[str, list[dict]] = {}
    for series in response:
        name, _, ref = series["target"].rpartition(" ")
        found.setdefault(ref, []).append({**series, "target": name})
    return found


def test_dashboard_post_wraps_every_target_in_alias_sub_and_gets_ref_ids_back(grafana, data):
    status, response = grafana.dashboard_render(
        {"A": "stats_counts.shop.orders", "B": "summarize(stats_counts.shop.*, '1min', 'sum')"},
        # The frontend widens the range by a second on each side.
        data.start - 1,
        data.end + 1,
        max_data_points=1500,
    )
    assert status == 200
    for series in response:
        assert_grafana_series(series)
    refs = by_ref_id(response)
    assert sorted(refs) == ["A", "B"]
    [orders] = refs["A"]
    assert orders["target"] == "stats_counts.shop.orders"
    assert points(orders) == data.series["stats_counts.shop.orders"]
    minutes = {s["target"]: list(points(s).values()) for s in refs["B"]}
    assert minutes == {
        'summarize(stats_counts.shop.orders, "1min", "sum")': [120.0, 120.0],
        'summarize(stats_counts.shop.refunds, "1min", "sum")': [60.0, 60.0],
    }


def test_dashboard_post_consolidates_to_the_panel_width(grafana, data):
    status, response = grafana.dashboard_render(
        {"A": "stats.timers.shop.checkout.mean", "B": "stats.gauges.shop.active_users"},
        data.start - 1,
        data.end,
        max_data_points=30,
    )
    assert status == 200
    refs = by_ref_id(response)
    for series in response:
        assert_grafana_series(series)
        assert len(series["datapoints"]) <= 31
        stamps = [ts for _, ts in series["datapoints"]]
        [step] = {b - a for a, b in itertools.pairwise(stamps)}
        assert step * 30 >= SECONDS
    assert set(points(refs["A"][0]).values()) == {50.0}
    # Averages of 40s then 41s: the step from one minute to the next survives.
    gauge = list(points(refs["B"][0]).values())
    assert gauge[0] == 40.0
    assert gauge[-1] == 41.0


def test_dashboard_post_accepts_relative_times_of_old_grafana(grafana, data):
    status, response = grafana.dashboard_render(
        {"A": "stats.shop.orders"}, "-10min", "now", max_data_points=1000
    )
    assert status == 200
    [series] = response
    assert_grafana_series(series)
    assert series["target"] == "stats.shop.orders A"
    assert points(series) == data.series["stats.shop.orders"]


def test_alert_post_is_one_target_and_a_top_level_array(grafana, data):
    status, response = grafana.backend_render(
        "sumSeries(stats_counts.shop.*)", data.start - 1, data.end
    )
    assert status == 200
    assert isinstance(response, list)
    [series] = response
    assert_grafana_series(series)
    assert series["target"] == "sumSeries(stats_counts.shop.*)"
    assert set(points(series).values()) == {3.0}
    assert len(points(series)) == SECONDS


def test_alert_post_decodes_plus_as_space(grafana, data):
    status, response = grafana.backend_render(
        "alias(maxSeries(stats.timers.shop.checkout.upper), 'checkout worst case')",
        data.start - 1,
        data.end,
    )
    assert status == 200
    [series] = response
    assert series["target"] == "checkout worst case"
    assert points(series) == data.series["stats.timers.shop.checkout.upper"]


def test_alert_on_a_bad_query_is_an_error_not_empty_data(grafana, data):
    status, _ = grafana.backend_render("noSuchFunction(stats.shop.orders)", data.start, data.end)
    assert status >= 400


def test_save_and_test_constant_line(grafana):
    now = int(time.time())
    status, response = grafana.backend_render("constantLine(100)", now - 3600, now, 100)
    assert status == 200
    [series] = response
    assert_grafana_series(series)
    assert [value for value, _ in series["datapoints"]] == [100, 100, 100]
    stamps = [ts for _, ts in series["datapoints"]]
    assert stamps[0] == now - 3600


def find_answer(response: list[dict]) -> dict[str, tuple[int, int]]:
    for node in response:
        assert set(node) >= {"text", "id", "expandable", "leaf", "allowChildren"}
        assert node["id"].endswith(node["text"])
    return {node["id"]: (node["expandable"], node["leaf"]) for node in response}


def test_find_post_lists_branches_and_leaves(grafana, data):
    status, response = grafana.find_post("stats.*", data.start, data.end)
    assert status == 200
    assert find_answer(response) == {
        "stats.gauges": (1, 0),
        "stats.shop": (1, 0),
        "stats.timers": (1, 0),
    }
    status, response = grafana.find_post("stats.timers.shop.checkout.*", data.start, data.end)
    assert status == 200
    assert find_answer(response) == {
        "stats.timers.shop.checkout.mean": (0, 1),
        "stats.timers.shop.checkout.upper": (0, 1),
    }


def test_find_get_for_the_query_editor(grafana):
    status, response = grafana.find_get("stats_counts.shop.*")
    assert status == 200
    assert find_answer(response) == {
        "stats_counts.shop.orders": (0, 1),
        "stats_counts.shop.refunds": (0, 1),
    }
    status, response = grafana.find_get("*")
    assert status == 200
    assert {"stats", "stats_counts"} <= {node["text"] for node in response}


def test_expand_for_template_variables(grafana):
    status, response = grafana.expand("stats.timers.shop.*.*")
    assert status == 200
    assert response == {
        "results": ["stats.timers.shop.checkout.mean", "stats.timers.shop.checkout.upper"]
    }
    status, response = grafana.expand("stats_counts.*")
    assert status == 200
    assert response == {"results": ["stats_counts.shop"]}


def test_a_series_whose_hash_is_a_ring_entry_is_served(grafana, data):
    status, response = grafana.backend_render(ON_A_RING_ENTRY, data.start - 1, data.end)
    assert status == 200
    [series] = response
    assert points(series) == data.series[ON_A_RING_ENTRY]
