"""Flush math and naming, with a frozen clock, against output observed from npm statsd 0.9.0.

Every expected block below was produced by the reference daemon fed the same lines (flush
interval 1 s), except where a comment names a documented difference.
"""

from __future__ import annotations

from freezegun import freeze_time

from aggregator.config import from_mapping
from aggregator.flush import Flush
from aggregator.naming import Namer
from aggregator.parse import Parser
from aggregator.state import Interval, Store

TS = 1_800_000_000


def run(flushes: list[list[bytes]], **config) -> list[list[str]]:
    """Each flush: its datagrams -> one receiver interval -> merged -> lines without ts."""
    config.setdefault("flush_interval", 1)
    cfg = from_mapping(config)
    parser, store, flush = Parser(cfg), Store(max_names=cfg.max_metric_names), Flush(cfg)
    flush.init_store(store)
    ttl = cfg.gauges_max_ttl if cfg.deletes("gauges") else None
    out = []
    with freeze_time() as clock:
        for i, datagrams in enumerate(flushes):
            iv = Interval()
            for d in datagrams:
                parser.feed(d, iv)
            store.merge([iv], cfg.prefix_stats, ttl)
            result = flush(store, TS + i)
            lines = b"".join(result.payload).decode().splitlines()
            assert all(line.endswith(f" {TS + i}") for line in lines)
            out.append([line.rsplit(" ", 1)[0] for line in lines])
            clock.tick(1)
    return out


def block(text: str) -> list[str]:
    return [line.strip() for line in text.strip().splitlines()]


def test_legacy_namespace_two_flushes():
    first, second = run(
        [
            [
                b"a.b:1|c\na.b:2|c|@0.5\nt:3|ms\nt:1|ms\nt:2|ms\ng:5|g\ng:-2|g\ns:x|s\ns:y|s\n"
                b"c:0.1|c",
                b"c:0.1|c",
                b"c:0.1|c",
            ],
            [],
        ]
    )
    assert first == block("""
        stats.statsd.bad_lines_seen 0
        stats_counts.statsd.bad_lines_seen 0
        stats.statsd.packets_received 3
        stats_counts.statsd.packets_received 3
        stats.statsd.metrics_received 12
        stats_counts.statsd.metrics_received 12
        stats.a.b 5
        stats_counts.a.b 5
        stats.c 0.30000000000000004
        stats_counts.c 0.30000000000000004
        stats.timers.t.count_90 3
        stats.timers.t.mean_90 2
        stats.timers.t.upper_90 3
        stats.timers.t.sum_90 6
        stats.timers.t.sum_squares_90 14
        stats.timers.t.std 0.816496580927726
        stats.timers.t.upper 3
        stats.timers.t.lower 1
        stats.timers.t.count 3
        stats.timers.t.count_ps 3
        stats.timers.t.sum 6
        stats.timers.t.sum_squares 14
        stats.timers.t.mean 2
        stats.timers.t.median 2
        stats.gauges.g 3
        stats.sets.s.count 2
        statsd.numStats 8
        stats.statsd.graphiteStats.calculationtime 0
        stats.statsd.processing_time 0
    """)
    assert second == block("""
        stats.statsd.bad_lines_seen 0
        stats_counts.statsd.bad_lines_seen 0
        stats.statsd.packets_received 0
        stats_counts.statsd.packets_received 0
        stats.statsd.metrics_received 0
        stats_counts.statsd.metrics_received 0
        stats.a.b 0
        stats_counts.a.b 0
        stats.c 0
        stats_counts.c 0
        stats.timers.t.count_ps 0
        stats.timers.t.count 0
        stats.gauges.g 3
        stats.gauges.statsd.timestamp_lag 0
        stats.sets.s.count 0
        statsd.numStats 9
        stats.statsd.graphiteStats.calculationtime 0
        stats.statsd.processing_time 0
    """)


def test_counter_rate_divides_by_the_interval_in_seconds():
    (lines,) = run([[b"c:3|c"]], flush_interval=0.5)
    assert "stats.c 6" in lines
    assert "stats_counts.c 3" in lines


def test_timestamp_lag_is_a_gauge_from_the_second_flush_on():
    cfg = from_mapping({"flush_interval": 10})
    store, flush = Store(), Flush(cfg)
    flush.init_store(store)
    assert b"timestamp_lag" not in b"".join(flush(store, TS).payload)
    assert b"stats.gauges.statsd.timestamp_lag 2 " in b"".join(flush(store, TS + 12).payload)


def test_new_namespace_with_every_prefix_and_suffix_and_tags():
    (lines,) = run(
        [[b"ns.c:3|c\nns.t:4|ms\nns.g:1|g\nns.s:z|s\ntg.sr:1|c|#a:b"]],
        legacy_namespace=False,
        global_prefix="gp",
        prefix_counter="cnt",
        prefix_timer="tim",
        prefix_gauge="gau",
        prefix_set="st",
        global_suffix="host1",
    )
    assert lines == block("""
        gp.cnt.statsd.bad_lines_seen.rate.host1 0
        gp.cnt.statsd.bad_lines_seen.count.host1 0
        gp.cnt.statsd.packets_received.rate.host1 1
        gp.cnt.statsd.packets_received.count.host1 1
        gp.cnt.statsd.metrics_received.rate.host1 5
        gp.cnt.statsd.metrics_received.count.host1 5
        gp.cnt.ns.c.rate.host1 3
        gp.cnt.ns.c.count.host1 3
        gp.cnt.tg.sr.rate.host1;a=b 1
        gp.cnt.tg.sr.count.host1;a=b 1
        gp.tim.ns.t.count_90.host1 1
        gp.tim.ns.t.mean_90.host1 4
        gp.tim.ns.t.upper_90.host1 4
        gp.tim.ns.t.sum_90.host1 4
        gp.tim.ns.t.sum_squares_90.host1 16
        gp.tim.ns.t.std.host1 0
        gp.tim.ns.t.upper.host1 4
        gp.tim.ns.t.lower.host1 4
        gp.tim.ns.t.count.host1 1
        gp.tim.ns.t.count_ps.host1 1
        gp.tim.ns.t.sum.host1 4
        gp.tim.ns.t.sum_squares.host1 16
        gp.tim.ns.t.mean.host1 4
        gp.tim.ns.t.median.host1 4
        gp.gau.ns.g.host1 1
        gp.st.ns.s.count.host1 1
        gp.statsd.numStats.host1 8
        gp.statsd.graphiteStats.calculationtime.host1 0
        gp.statsd.processing_time.host1 0
    """)


def test_new_namespace_with_empty_prefixes():
    (lines,) = run(
        [[b"c:1|c\nt:1|ms"]], legacy_namespace=False, global_prefix="", prefix_counter=""
    )
    assert lines[6:8] == ["c.rate 1", "c.count 1"]
    assert lines[8] == "timers.t.count_90 1"
    assert lines[-3:] == [
        "statsd.numStats 5",
        "statsd.graphiteStats.calculationtime 0",
        "statsd.processing_time 0",
    ]


def test_legacy_namespace_ignores_prefixes_but_not_the_suffix():
    (lines,) = run([[b"c:1|c|#k:v"]], global_prefix="gp", prefix_counter="cnt", global_suffix="sfx")
    assert "stats.c.sfx;k=v 1" in lines
    assert "stats_counts.c.sfx;k=v 1" in lines
    assert "statsd.numStats.sfx 4" in lines


LAT = """
    stats.timers.lat.count_90 9
    stats.timers.lat.mean_90 5
    stats.timers.lat.upper_90 9
    stats.timers.lat.sum_90 45
    stats.timers.lat.sum_squares_90 285
    stats.timers.lat.count_top10 1
    stats.timers.lat.mean_top10 10
    stats.timers.lat.lower_top10 10
    stats.timers.lat.sum_top10 10
    stats.timers.lat.sum_squares_top10 100
    stats.timers.lat.count_99_9 10
    stats.timers.lat.mean_99_9 5.5
    stats.timers.lat.upper_99_9 10
    stats.timers.lat.sum_99_9 55
    stats.timers.lat.sum_squares_99_9 385
    stats.timers.lat.count_85 9
    stats.timers.lat.mean_85 5
    stats.timers.lat.upper_85 9
    stats.timers.lat.sum_85 45
    stats.timers.lat.sum_squares_85 285
    stats.timers.lat.std 2.8722813232690143
    stats.timers.lat.upper 10
    stats.timers.lat.lower 1
    stats.timers.lat.count 10
    stats.timers.lat.count_ps 10
    stats.timers.lat.sum 55
    stats.timers.lat.sum_squares 385
    stats.timers.lat.mean 5.5
    stats.timers.lat.median 5.5
    stats.timers.lat.histogram.bin_3 2
    stats.timers.lat.histogram.bin_5_5 3
    stats.timers.lat.histogram.bin_inf 5
"""


def test_timer_thresholds_negative_fractional_js_rounding_and_histograms():
    # p=85, n=10: 8.5 rounds up to 9 (JS Math.round), not to 8 (Python round)
    (lines,) = run(
        [
            [
                b"lat:" + b":".join(b"%d|ms" % i for i in range(10, 0, -1)),
                b"one:7|ms",
                b"other:50|ms:150|ms",
            ]
        ],
        percent_thresholds=[90, -10, 99.9, 85],
        histogram=[
            {"metric": "lat", "bins": [3, 5.5, "inf"]},
            {"metric": "", "bins": [100]},
        ],
    )
    timers = [line for line in lines if line.startswith("stats.timers.")]
    assert timers[:32] == block(LAT)
    one = [line for line in timers if ".one." in line]
    assert one[:5] == block("""
        stats.timers.one.count_90 1
        stats.timers.one.mean_90 7
        stats.timers.one.upper_90 7
        stats.timers.one.sum_90 7
        stats.timers.one.sum_squares_90 49
    """)
    assert one[5:8] == [
        "stats.timers.one.count_top10 1",
        "stats.timers.one.mean_top10 7",
        "stats.timers.one.lower_top10 7",
    ]
    assert one[-1] == "stats.timers.one.histogram.bin_100 1"  # first matching rule wins
    other = [line for line in timers if ".other." in line]
    assert "stats.timers.other.count_top10" not in " ".join(other)  # round(0.2) == 0
    assert "stats.timers.other.std 50" in other
    assert other[-1] == "stats.timers.other.histogram.bin_100 1"  # 150 >= 100: dropped


def test_top_threshold_covering_every_value_uses_the_whole_sum():
    # the reference reads past the start of its cumulative sums here and writes NaN
    (lines,) = run([[b"t:1|ms:2|ms:3|ms"]], percent_thresholds=[-90])
    assert "stats.timers.t.count_top90 3" in lines
    assert "stats.timers.t.sum_top90 6" in lines
    assert "stats.timers.t.mean_top90 2" in lines
    assert "stats.timers.t.lower_top90 1" in lines


def test_sample_rates_scale_the_timer_count_only():
    (lines,) = run([[b"t:10|ms|@0.1\nt:20|ms"]])
    assert "stats.timers.t.count 11" in lines
    assert "stats.timers.t.count_ps 11" in lines
    assert "stats.timers.t.sum 30" in lines
    assert "stats.timers.t.mean 15" in lines


def test_calculated_timer_metrics_filter():
    (lines,) = run(
        [[b"t:1|ms:2|ms:3|ms"]],
        calculated_timer_metrics=["count", "upper_percent", "mean", "histogram"],
        percent_thresholds=[90, 99.9],
        histogram=[{"metric": "t", "bins": [2, "inf"]}],
    )
    timers = [line for line in lines if line.startswith("stats.timers.")]
    # the reference drops upper_99_9 (its pattern misses fractional thresholds)
    assert timers == block("""
        stats.timers.t.upper_90 3
        stats.timers.t.upper_99_9 3
        stats.timers.t.count 3
        stats.timers.t.mean 2
        stats.timers.t.histogram.bin_2 1
        stats.timers.t.histogram.bin_inf 2
    """)


def test_delete_idle_stats_and_gauge_ttl():
    flushes = run(
        [[b"c:1|c\nt:1|ms\ng:1|g\ns:1|s"], [], []], delete_idle_stats=True, gauges_max_ttl=2
    )
    user = [[line for line in f if "statsd" not in line] for f in flushes]
    assert user[0][:2] == ["stats.c 1", "stats_counts.c 1"]
    assert user[0][-2:] == ["stats.gauges.g 1", "stats.sets.s.count 1"]
    assert user[1] == ["stats.gauges.g 1"]
    assert user[2] == []
    # the internal counters are zeroed, never deleted; the lag gauge never expires
    assert "stats_counts.statsd.packets_received 0" in flushes[2]
    assert "stats.gauges.statsd.timestamp_lag 0" in flushes[2]


def test_individual_delete_options_override_delete_idle_stats():
    flushes = run([[b"c:1|c\nt:1|ms"], []], delete_idle_stats=True, delete_counters=False)
    assert "stats.c 0" in flushes[1]
    assert not [line for line in flushes[1] if line.startswith("stats.timers.")]


def test_flush_counts_off_and_prefix_stats():
    (lines,) = run([[b"c:4|c"]], flush_counts=False, prefix_stats="agg")
    assert lines == block("""
        stats.agg.bad_lines_seen 0
        stats.agg.packets_received 1
        stats.agg.metrics_received 1
        stats.c 4
        agg.numStats 4
        stats.agg.graphiteStats.calculationtime 0
        stats.agg.processing_time 0
    """)


def test_tag_mode_path_folds_sorted_tags_into_one_segment_after_the_name():
    (lines,) = run(
        [[b"req:1|c|#status:200,method:get,canary\nlat:5|ms|#host:a.b\ng:1|g|#x:1\n"
          b"u:a|s|#env:prod"]],
        tag_mode="path",
    )  # fmt: skip
    assert "stats.req.canary--method-get--status-200 1" in lines
    assert "stats_counts.req.canary--method-get--status-200 1" in lines
    assert "stats.timers.lat.host-a_b.mean 5" in lines
    assert "stats.gauges.g.x-1 1" in lines
    assert "stats.sets.u.env-prod.count 1" in lines
    assert not [line for line in lines if ";" in line]


def test_one_two_or_no_tags_keep_the_same_depth_so_one_wildcard_reads_them_all():
    (lines,) = run(
        [[b"app.lat:5|ms|#env:prod\napp.lat:6|ms|#env:prod,region:eu\napp.lat:7|ms|#a.b:c=d"]],
        tag_mode="path",
    )
    uppers = sorted(line for line in lines if ".upper " in line)
    assert uppers == [
        "stats.timers.app.lat.a_b-c_d.upper 7",
        "stats.timers.app.lat.env-prod--region-eu.upper 6",
        "stats.timers.app.lat.env-prod.upper 5",
    ]


def test_tag_mode_path_in_the_new_namespace_puts_tags_before_the_field_and_suffix():
    (lines,) = run([[b"req:1|c|#a:b"]], tag_mode="path", legacy_namespace=False, global_suffix="h1")
    assert "stats.counters.req.a-b.rate.h1 1" in lines


def test_the_host_tag_marks_every_series_the_aggregator_writes_its_own_included():
    (lines,) = run([[b"req:1|c\nreq:1|c|#env:prod\nu:a|s"]], tag_mode="path", host_tag="web-1")
    assert "stats_counts.req.host-web-1 1" in lines
    assert "stats_counts.req.env-prod--host-web-1 1" in lines
    assert "stats.sets.u.host-web-1.count 1" in lines
    assert "stats_counts.statsd.bad_lines_seen.host-web-1 0" in lines
    assert "statsd.numStats.host-web-1 6" in lines
    assert any(line.startswith("stats.statsd.processing_time.host-web-1 ") for line in lines)
    # an application's own host tag wins: one host tag per series
    (own,) = run([[b"req:1|c|#host:app1"]], tag_mode="path", host_tag="web-1")
    assert "stats_counts.req.host-app1 1" in own


def test_the_host_tag_in_graphite_mode_is_a_graphite_tag():
    (lines,) = run([[b"req:1|c"]], host_tag="web-1")
    assert "stats_counts.req;host=web-1 1" in lines
    assert any(line.startswith("statsd.numStats;host=web-1 ") for line in lines)


def test_host_tag_auto_is_the_machines_name(monkeypatch):
    monkeypatch.setattr("socket.gethostname", lambda: "db.example.org")
    (lines,) = run([[b"req:1|c"]], tag_mode="path", host_tag="auto")
    assert "stats_counts.req.host-db_example_org 1" in lines


def test_set_paths_of_another_field_fold_like_count():
    namer = Namer(from_mapping({"tag_mode": "path", "global_suffix": "x"}))
    count = namer.set_path("app.users.active;env=prod")
    assert count == "stats.sets.app.users.active.env-prod.count.x"
    assert (
        namer.set_path("app.users.active;env=prod", "daily_count")
        == "stats.sets.app.users.active.env-prod.daily_count.x"
    )


def test_raw_keys_are_sanitised_on_output_tags_included():
    (lines,) = run([[b"a b:1|c\na_b:2|c\nt:1|c|#k:v w"]], key_name_sanitize=False)
    # two raw keys, one path: the reference writes both lines too
    assert lines.count("stats_counts.a_b 1") == 1
    assert lines.count("stats_counts.a_b 2") == 1
    assert "stats_counts.t;k=v_w 1" in lines


def test_graphite_stats_lines_describe_the_previous_write():
    flush = Flush(from_mapping({"global_suffix": "h"}))
    stats = {"last_exception": 0, "last_flush": 17, "flush_time": 3, "flush_length": 99}
    assert flush.graphite_stats(stats, 20).splitlines() == [
        "stats.statsd.graphiteStats.last_exception.h 0 20",
        "stats.statsd.graphiteStats.last_flush.h 17 20",
        "stats.statsd.graphiteStats.flush_time.h 3 20",
        "stats.statsd.graphiteStats.flush_length.h 99 20",
    ]


def test_spool_stats_are_gauges_under_prefix_stats_in_either_namespace():
    legacy = Flush(from_mapping({}))
    assert legacy.spool_stats(3, 4096, 20).splitlines() == [
        "stats.gauges.statsd.spool.flushes 3 20",
        "stats.gauges.statsd.spool.bytes 4096 20",
    ]
    new = Flush(from_mapping({"legacy_namespace": False, "prefix_stats": "agg"}))
    assert new.spool_stats(0, 0, 20).splitlines()[0].startswith("stats.gauges.agg.spool.flushes 0")


def test_values_that_overflow_are_not_written_but_counted():
    # Each input is finite; the counter's sum, the gauge's deltas, the timer's squares are not.
    [lines] = run([[b"c:1e308|c\nc:1e308|c\ng:1e308|g\ng:+1e308|g\nt:1e200|ms\nok:1|c"]])
    assert not [line for line in lines if "Infinity" in line or "NaN" in line]
    assert "stats_counts.ok 1" in lines
    assert "stats.timers.t.upper 1e+200" in lines  # its finite fields are still written
    assert not [line for line in lines if line.startswith(("stats.c ", "stats.gauges.g "))]


def test_the_overflow_count_is_kept_in_the_stores_rejects():
    cfg = from_mapping({"flush_interval": 1})
    parser, store, flush = Parser(cfg), Store(), Flush(cfg)
    iv = Interval()
    parser.feed(b"c:1e308|c|@1e-300\nt:1e200|ms", iv)
    store.merge([iv], "statsd", None)
    flush(store, TS)
    # the counter's rate and count; the timer's sum_squares and sum_squares_90
    assert store.rejects["non_finite_value"] == 4
