"""Merging receivers' intervals: sums commute, gauges replay in arrival order."""

from __future__ import annotations

from aggregator.config import from_mapping
from aggregator.parse import Parser
from aggregator.state import Interval, Store, matching


def interval(seq_and_data: list[tuple[int, bytes]]) -> Interval:
    parser, iv = Parser(from_mapping({})), Interval()
    for seq, data in seq_and_data:
        iv.seq = seq
        parser.feed(data, iv)
    return iv


def merged(*intervals: Interval, store: Store | None = None) -> Store:
    store = store or Store()
    store.merge(list(intervals), "statsd", None)
    return store


def test_gauge_writes_replay_in_batch_order_across_receivers():
    a = interval([(1, b"g:3|g"), (4, b"g:+1|g")])
    b = interval([(2, b"g:-10|g"), (3, b"g:100|g\ng:+5|g")])
    # arrival order: 3, -10, 100, +5, +1  ->  106
    assert merged(a, b).gauges["g"] == 106
    assert merged(b, a).gauges["g"] == 106


def test_deltas_without_a_value_apply_to_the_previous_flush():
    store = merged(interval([(1, b"g:10|g")]))
    merged(interval([(5, b"g:+2|g")]), interval([(6, b"g:-0.5|g")]), store=store)
    assert store.gauges["g"] == 11.5


def test_a_new_gauge_starts_from_its_first_delta():
    assert merged(interval([(1, b"g:-5|g")])).gauges["g"] == -5


def test_counters_timers_sets_add_up():
    a = interval([(1, b"c:1|c\nt:1|ms|@0.5\ns:x|s")])
    b = interval([(2, b"c:2|c\nt:3|ms\ns:y|s\ns:x|s")])
    store = merged(a, b)
    assert store.counters["c"] == 3
    assert sorted(store.timers["t"]) == [1.0, 3.0]
    assert store.timer_counts["t"] == 3.0
    assert store.sets["s"] == {"x", "y"}
    assert store.counters["statsd.metrics_received"] == 7


def test_name_cap_in_the_store_counts_drops_as_bad_lines():
    store = Store(max_names=5)
    merged(interval([(1, b"a:1|c\nb:1|c\nc:1|ms\nd:1|g")]), store=store)
    # the three internal counters always exist and take three of the five names
    assert store.names() == 5
    assert set(store.counters) >= {"a", "b"}
    assert store.rejects["too_many_names"] == 2
    assert store.counters["statsd.bad_lines_seen"] == 2
    assert store.bad_lines_seen == 2


def test_mgmt_delete_patterns():
    keys = {"a.b": 1, "a.c.d": 1, "ab": 1, "x": 1}
    assert matching(keys, ["a.*"]) == ["a.b", "a.c.d"]
    assert matching(keys, ["x", "nope"]) == ["x"]
    store = Store(timers={"a.b": [1.0]}, timer_counts={"a.b": 1})
    assert store.drop("timers", "a.*") == ["a.b"]
    assert store.timer_counts == {}
