"""The wire format: what each input becomes, and what is rejected (and counted) instead."""

from __future__ import annotations

from array import array

import pytest

from aggregator.config import from_mapping
from aggregator.parse import Parser, number
from aggregator.state import Gauge, Interval


def parse(*datagrams: bytes, **config) -> Interval:
    parser = Parser(from_mapping(config))
    iv = Interval()
    for d in datagrams:
        parser.feed(d, iv)
    return iv


def test_counter_gauge_timer_set_in_one_packet():
    iv = parse(b"a:2|c\nt:5|ms\ng:3|g\ns:u1|s\ns:u2|s\ns:u1|s")
    assert iv.counters == {"a": 2}
    assert iv.timers == {"t": array("d", [5.0])}
    assert iv.gauges == {"g": Gauge(0, 3.0)}
    assert iv.sets == {"s": {"u1", "u2"}}
    assert (iv.packets, iv.metrics, iv.bad) == (1, 6, 0)


def test_multi_value_gauges_keep_their_place_in_the_packet():
    assert parse(b"g:10|g\ng:1|g:+2|g").gauges["g"].deltas == [(0, 2.0)]
    assert parse(b"g:1|g:+2|g\ng:10|g").gauges["g"] == Gauge(0, 10.0)


def test_h_and_d_are_timers():
    assert parse(b"t:1|h\nt:2|d\nt:3|ms").timers == {"t": array("d", [1.0, 2.0, 3.0])}


def test_multi_value_line_shares_the_key_and_may_mix_types():
    iv = parse(b"k:1|c:2|c:30|ms")
    assert iv.counters == {"k": 3}
    assert iv.timers == {"k": array("d", [30.0])}
    assert iv.metrics == 1


def test_sample_rate_scales_counters_and_timer_counts_not_timer_values():
    iv = parse(b"c:1|c|@0.1\nt:4|ms|@0.5\nt:6|ms")
    assert iv.counters == {"c": 10.0}
    assert iv.timers == {"t": array("d", [4.0, 6.0])}
    assert iv.timer_count("t") == 3.0


def test_sample_rate_is_read_in_full_unlike_the_reference():
    # the reference's regex reads @1e-1 as 1
    assert parse(b"c:1|c|@1e-1").counters == {"c": 10.0}


def test_unsampled_timer_count_is_the_number_of_values():
    iv = parse(b"t:1|ms\nt:2|ms")
    assert iv.timer_counts == {}
    assert iv.timer_count("t") == 2


def test_gauge_keeps_its_last_value_and_the_deltas_after_it():
    iv = parse(b"g:3|g\ng:-10|g\nh:+5|g\nh:-2|g\nk:+5|g\nk:1|g")
    g, h, k = iv.gauges["g"], iv.gauges["h"], iv.gauges["k"]
    assert (g.value, g.deltas) == (3.0, [(0, -10.0)])
    assert (h.value, h.deltas) == (None, [(0, 5.0), (0, -2.0)])
    assert (k.value, k.deltas) == (1.0, [])


def test_set_values_are_strings_and_empty_is_zero():
    assert parse(b"s:1|s\ns:1.0|s\ns:|s").sets == {"s": {"1", "1.0", "0"}}


def test_tags_become_graphite_tags_in_the_order_given():
    iv = parse(b"req:1|c|#region:eu,host:a;b,flag")
    assert iv.counters == {"req;region=eu;host=a_b;flag": 1}


def test_sample_rate_after_the_tags_still_applies():
    # the reference folds `|@0.5` into the last tag; DogStatsD clients mean a rate
    assert parse(b"req:1|c|#a:b|@0.5").counters == {"req;a=b": 2.0}


def test_empty_tag_list_and_empty_tags_give_no_tags():
    assert parse(b"x:1|c|#\ny:1|c|#a:b,,c:d").counters == {"x": 1, "y;a=b;c=d": 1}


def test_key_sanitising():
    iv = parse("a b\t c/d:1|c\ncafé!:1|c".encode())
    assert iv.counters == {"a_b_c-d": 1, "caf": 1}


def test_raw_keys_when_sanitising_is_off():
    iv = parse(b"a b:1|c\na_b:1|c", key_name_sanitize=False)
    assert iv.counters == {"a b": 1, "a_b": 1}


def test_raw_keys_that_would_leave_no_path_are_rejected_even_when_sanitising_is_off():
    # Paths are sanitised at output: "!!" would become "stats.timers..count" and the like.
    iv = parse(b"!!:1|ms\n\x00:1|c\n;k=v:1|c\nok:1|c", key_name_sanitize=False)
    assert iv.rejects == {"empty_name": 3}
    assert iv.counters == {"ok": 1}


def test_crlf_line_ends_are_accepted():
    iv = parse(b"x:1|s\r\ny:7|ms\r\n")
    assert iv.sets == {"x": {"1"}}
    assert iv.timers == {"y": array("d", [7.0])}
    assert iv.bad == 0


def test_empty_lines_and_empty_datagrams_are_not_metrics():
    iv = parse(b"", b"\n\na:1|c\n\n")
    assert (iv.packets, iv.metrics, iv.bad) == (2, 1, 0)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"novalue", "no_value"),
        (b"a:1", "no_type"),
        (b"a:1|x", "unknown_type"),
        (b"a:1|", "unknown_type"),
        (b"a:1|c|", "unknown_field"),
        (b"a:1|c|@", "bad_sample_rate"),
        (b"a:1|c|@abc", "bad_sample_rate"),
        (b"a:1|c|@-0.5", "bad_sample_rate"),
        (b"a:1|c|0.5", "unknown_field"),
        (b"a:1|c|x:1", "unknown_field"),
        (b"a:1|c|c", "unknown_field"),
        (b"a:1|c|@0.5|c:x|@0.5", "repeated_field"),
        (b"a:1|c|c:x|c:y", "repeated_field"),
        (b"a:1|c|T", "bad_timestamp"),
        (b"a:1|c|T-5", "bad_timestamp"),
        (b"a:1|c|T1.5", "bad_timestamp"),
        (b"a:1|c|c:x|@0", "bad_sample_rate"),
        (b"a:1:x:3|d", "bad_value"),
        (b"a:1:-2|ms", "negative_timer"),
        (b"_e{5,4}:title|tex", "bad_event"),
        (b"_e{x,4}:title|text", "bad_event"),
        (b"_e{5,4}:title|textX", "bad_event"),
        (b"_sc|name|4", "bad_service_check"),
        (b"_sc||0", "bad_service_check"),
        (b",k=v:1|c", "empty_name"),
        (b"a:1|c|@0", "bad_sample_rate"),
        (b"a:1|s|@x", "bad_sample_rate"),
        (b"a:0x10|c", "bad_value"),
        (b"a: |c", "bad_value"),
        (b"a: 1|c", "bad_value"),
        (b"a:|c", "bad_value"),
        (b"a:Infinity|c", "bad_value"),
        (b"a:inf|g", "bad_value"),
        (b"a:nan|ms", "bad_value"),
        (b"a:1e999|c", "bad_value"),
        (b"a:1_000|c", "bad_value"),
        (b"a:1a|c", "bad_value"),
        ("a:١|c".encode(), "bad_value"),
        (b"a:-1|ms", "negative_timer"),
        (b":1|c", "empty_name"),
        (b"!!:1|c", "empty_name"),
        (b":1|c|#a:b", "empty_name"),
        (b"a:1|c|#x:y|#z:w", "repeated_tags"),
        (b"a:1|c\xff", "invalid_utf8"),
    ],
)
def test_rejected_and_counted(line: bytes, reason: str):
    iv = parse(b"ok:1|c\n" + line + b"\nok:1|c")
    assert iv.rejects == {reason: 1}
    assert iv.bad == 1
    assert iv.counters.get("ok") == 2  # the rest of the packet still counts
    assert iv.metrics == 3


def test_a_multi_group_line_keeps_its_good_groups_and_counts_once():
    # the reference takes the good groups too, but counts each bad one
    iv = parse(b"k:1|c:x|c:2|q:3|c")
    assert iv.counters == {"k": 4}
    assert iv.rejects == {"bad_value": 1}
    assert iv.bad == 1


def test_reference_groups_may_carry_sample_rates():
    iv = parse(b"k:1|c|@0.5:2|ms|@0.25")
    assert iv.counters == {"k": 2.0}
    assert iv.timers == {"k": array("d", [2.0])}
    assert iv.timer_count("k") == 4.0


def test_dogstatsd_packed_values_share_type_rate_and_tags():
    iv = parse(b"t:1:2:32|d|@0.5|#env:prod\nc:1:2|c")
    assert iv.timers == {"t;env=prod": array("d", [1.0, 2.0, 32.0])}
    assert iv.timer_count("t;env=prod") == 6.0
    assert iv.counters == {"c": 3}
    assert (iv.metrics, iv.bad) == (2, 0)


def test_packed_values_are_all_taken_or_the_line_is_rejected_once():
    iv = parse(b"t:1:x:3|d\ng:5:-1:+2|g")
    assert iv.timers == {}
    assert iv.rejects == {"bad_value": 1}
    assert iv.gauges["g"] == Gauge(0, 5.0, [(0, -1.0), (0, 2.0)])


def test_a_set_member_keeps_its_colons():
    assert parse(b"s:a:b|s|c:x").sets == {"s": {"a:b"}}


@pytest.mark.parametrize(
    "fields",
    [
        "|c:abc123",
        "|T1700000000",
        "|e:it-false,cn-app,pu-123",
        "|card:orchestrator",
        "|@0.5|#k:v|c:ci-1,in-2|T1700000000|e:x|card:low",
        "|card:low|e:x|T1700000000|c:abc|#k:v|@0.5",
        "|#k:v|T1700000000|@0.5",
    ],
)
def test_dogstatsd_fields_in_any_order_after_the_type(fields: str):
    rate = 0.5 if "@" in fields else 1.0
    tags = ";k=v" if "#" in fields else ""
    iv = parse(f"a:1|c{fields}\nt:4|ms{fields}\ns:u|s{fields}\ng:3|g{fields}".encode())
    assert iv.counters == {f"a{tags}": 1 / rate}
    assert iv.timers == {f"t{tags}": array("d", [4.0])}
    assert iv.timer_count(f"t{tags}") == 1 / rate
    assert iv.sets == {f"s{tags}": {"u"}}
    assert iv.gauges == {f"g{tags}": Gauge(0, 3.0)}
    assert (iv.metrics, iv.bad) == (4, 0)


def test_ignored_fields_count_once_per_line_and_name():
    iv = parse(b"a:1|c|c:x|T1\nb:1:2:3|d|c:y|e:z\nc:1|c|card:low\nd:1|c")
    assert iv.extras == {
        "ignored_fields.container_id": 2,
        "ignored_fields.timestamp": 1,
        "ignored_fields.external_data": 1,
        "ignored_fields.cardinality": 1,
    }
    assert iv.bad == 0


def test_a_rate_before_the_fields_is_not_treated_differently():
    # the issue: `x:1|c|@0.5|c:id` was accepted while `x:1|c|c:id` counted twice as bad
    assert parse(b"x:1|c|@0.5|c:id").counters == parse(b"x:2|c|c:id").counters == {"x": 2}


def test_events_and_service_checks_are_counted_not_stored_not_bad():
    iv = parse(
        "_e{5,4}:title|text\n_e{6,10}:ti|tle|text\\nmore|d:1700000000|h:web1|p:low|t:error|#a:b\n"
        "_e{2,2}:é|ok|k:agg\n_sc|db.ok|0\n_sc|db.ok|2|d:1700000000|h:web1|#a:b|m:down: no route\n"
        "a:1|c".encode()
    )
    assert iv.extras == {"events_received": 3, "service_checks_received": 2}
    assert iv.counters == {"a": 1}
    assert (iv.metrics, iv.bad, iv.names) == (6, 0, 1)


def test_telegraf_tags_in_the_name_become_tags():
    iv = parse(b"requests,route=home,method=get:1|c\nlat,host=a;b:5|ms\nflag,canary:1|c")
    assert iv.counters == {"requests;route=home;method=get": 1, "flag;canary": 1}
    assert iv.timers == {"lat;host=a_b": array("d", [5.0])}


def test_telegraf_and_dogstatsd_tags_in_one_line_merge_as_one_representation():
    iv = parse(b"req,route=home:1|c|#method:get\nreq:1|c|#route:home,method:get")
    assert iv.counters == {"req;route=home;method=get": 2}


def test_telegraf_tags_with_packed_values_and_fields():
    iv = parse(b"lat,route=home:1:2|ms|@0.5|c:abc")
    assert iv.timers == {"lat;route=home": array("d", [1.0, 2.0])}
    assert iv.timer_count("lat;route=home") == 4.0


def test_oversized_datagram_is_rejected_whole():
    iv = parse(b"a:1|c\n" * 20, max_datagram_size=100)
    assert iv.counters == {}
    assert iv.rejects == {"oversized_datagram": 1}
    assert iv.packets == 1


def test_line_length_cap():
    long_line = b"a" * 60 + b":1|c"
    iv = parse(b"b:1|c\n" + long_line, max_line_length=50)
    assert iv.counters == {"b": 1}
    assert iv.rejects == {"line_too_long": 1}
    assert iv.metrics == 2


def test_name_cap_drops_new_names_and_counts_them():
    iv = parse(b"a:1|c\nb:1|ms\nc:1|g\nd:1|s\na:1|c", max_metric_names=2)
    assert iv.counters == {"a": 2}
    assert iv.timers == {"b": array("d", [1.0])}
    assert iv.rejects == {"too_many_names": 2}


def test_invalid_utf8_only_costs_its_own_line():
    iv = parse(b"a:1|c\n\xc3\x28:1|c\nb:1|c")
    assert iv.counters == {"a": 1, "b": 1}
    assert iv.rejects == {"invalid_utf8": 1}


@pytest.mark.parametrize(
    ("text", "value"),
    [("1", 1.0), ("-2.5", -2.5), ("+3", 3.0), (".5", 0.5), ("5.", 5.0), ("1e3", 1000.0)],
)
def test_plain_decimal_numbers(text: str, value: float):
    assert number(text) == value


def test_feed_many_is_the_same_as_one_feed_per_datagram():
    datagrams = [b"a:1|c", b"b:2|ms\r", b"", b"c:1|c|#t:v", b"\xff", b"d:1|g"]
    one_by_one = parse(*datagrams)
    parser = Parser(from_mapping({}))
    batched = Interval()
    parser.feed_many([memoryview(d) for d in datagrams], batched)
    batched.last_msg_seen = one_by_one.last_msg_seen
    assert batched == one_by_one


def test_a_counter_line_seen_before_adds_up_like_a_new_one():
    # the second interval takes every line from the parser's cache of counter lines
    lines = b"a:1|c\na:1|c|@0.1\nb:2.5|c\nt:1|c|#k:v\nb:2.5|c"
    parser = Parser(from_mapping({}))
    first, second = Interval(), Interval()
    parser.feed(lines, first)
    parser.feed(lines, second)
    assert second.counters == first.counters == {"a": 11.0, "b": 5.0, "t;k=v": 1}
    assert (second.metrics, second.names, second.bad) == (5, 3, 0)


def test_a_cached_counter_line_still_meets_the_name_cap():
    parser = Parser(from_mapping({"max_metric_names": 1}))
    first, second = Interval(), Interval()
    parser.feed(b"a:1|c\nb:1|c", first)
    parser.feed(b"b:1|c\na:1|c\na:1|c", second)  # a fresh interval: b comes first now
    assert first.counters == {"a": 1}
    assert second.counters == {"b": 1}
    assert second.rejects == {"too_many_names": 2}


def test_a_reload_forgets_cached_lines():
    parser = Parser(from_mapping({}))
    parser.feed(b"a b:1|c", Interval())
    parser.configure(from_mapping({"key_name_sanitize": False}))
    iv = Interval()
    parser.feed(b"a b:1|c", iv)
    assert iv.counters == {"a b": 1}
