"""The line format and the sanitising of hostile input, including property tests that throw
arbitrary text at it and parse the result the way the reference daemon does."""

from __future__ import annotations

import math
import re
from datetime import timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from statsd_metrics.wire import (
    Metric,
    Rejected,
    format_ms,
    format_number,
    format_rate,
    format_set_member,
    format_tags,
    parse_line,
    sanitize_name,
    sanitize_tag,
)

ALLOWED = re.compile(r"^[A-Za-z0-9_.\-]+$")
# What a sent name may hold: nothing that splits the line, ASCII only, no control character.
SENDABLE = re.compile(r"^[^:|@#,\x00-\x1f\x7f]+$", re.ASCII)
JS_WHITESPACE = "\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"


def reference_key_sanitize(key: str) -> str:
    """The reference daemon's keyNameSanitize (statsd-semantics.md, 1), with JavaScript's
    whitespace class."""
    key = re.sub(f"[{JS_WHITESPACE}]+", "_", key)
    key = key.replace("/", "-")
    return re.sub(r"[^A-Za-z0-9_.\-;=]", "", key)


def reference_parse(line: str) -> tuple[str, list[list[str]], list[str]]:
    """Split a line as the reference does: tags at `|#`, groups at `:`, fields at `|`."""
    metric, _, tag_text = line.partition("|#")
    key, *groups = metric.split(":")
    tags = tag_text.split(",") if tag_text else []
    return key, [group.split("|") for group in groups], tags


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("api.requests", "api.requests"),
        ("café.crème", "caf.crme"),  # the reference deletes what is not ASCII
        ("a b\tc", "a_b_c"),
        ("a \u00a0b", "a_b"),  # one whitespace run, as JavaScript's `\s` sees it
        ("api/users/list", "api/users/list"),  # the aggregator writes `-`
        ("api.users(get)", "api.users(get)"),  # the aggregator deletes the parentheses
        ("a:1|c\nb:2|c", "a1c_b2c"),
        ("x|#evil:1", "xevil1"),
        ("rate@0.1", "rate0.1"),
        ("..a...b..", "..a...b.."),
        ("ﬁle", "le"),
        ("用户.登录", "."),
        ("tab;k=v", "tab;k=v"),
        ("nul\x00\x1c", "nul"),
        ("requests,route=home", "requestsroute=home"),  # not Telegraf-style tags
    ],
)
def test_sanitize_name_examples(raw, clean):
    assert sanitize_name(raw) == clean


@pytest.mark.parametrize("raw", ["", ":|@#", "用户", "()", 5, None, b"bytes"])
def test_names_without_a_usable_character_are_rejected(raw):
    with pytest.raises(Rejected) as info:
        sanitize_name(raw)
    assert info.value.reason == "bad_name"


@given(st.text())
def test_sanitized_names_are_what_graphite_stores(raw):
    try:
        clean = sanitize_name(raw)
    except Rejected:
        return
    assert SENDABLE.match(clean)
    # changed only as the reference would have changed it: the stored name is the same
    assert reference_key_sanitize(clean) == reference_key_sanitize(raw)
    assert sanitize_name(clean) == clean


@given(st.text())
def test_sanitized_tags_are_never_empty_nor_separators(raw):
    clean = sanitize_tag(raw)
    assert ALLOWED.match(clean)
    assert reference_key_sanitize(clean) == clean


def test_tags_are_sorted_merged_and_overridden():
    constant = {"env": "prod", "region": "eu"}
    assert format_tags({"route": "/x", "env": "dev"}, constant) == "|#env:dev,region:eu,route:-x"
    assert format_tags(["b:2", "a:1", "flag"], None) == "|#a:1,b:2,flag"
    assert format_tags(None, None) == ""
    assert format_tags({"": ""}, None) == "|#_:_"
    assert format_tags({"k": None, "n": 3}, None) == "|#k:None,n:3"


@pytest.mark.parametrize("tags", ["k:v", b"k:v", 5, [1], [("k", "v"), 2]])
def test_bad_tag_shapes_are_rejected(tags):
    with pytest.raises(Rejected) as info:
        format_tags(tags)
    assert info.value.reason == "bad_tags"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (3, "3"),
        (-2, "-2"),
        (2.5, "2.5"),
        (1e20, "1e+20"),
        (Decimal("1.25"), "1.25"),
        (Fraction(1, 4), "0.25"),
        (10**18, "1000000000000000000"),
    ],
)
def test_format_number(value, text):
    assert format_number(value) == text


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, "3", None, True, [1], b"1"])
def test_format_number_rejects_what_is_not_a_finite_number(value):
    with pytest.raises(Rejected) as info:
        format_number(value)
    assert info.value.reason == "bad_value"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (12.34567, "12.346"),
        (0.0, "0.000"),
        (7, "7"),
        (timedelta(milliseconds=1.5), "1.500"),
        (timedelta(seconds=2), "2000.000"),
        (Decimal("3.5"), "3.500"),
    ],
)
def test_format_ms(value, text):
    assert format_ms(value) == text


@pytest.mark.parametrize("value", [-0.5, -1, math.nan, math.inf, timedelta(seconds=-1), "5"])
def test_format_ms_rejects_negative_and_non_finite(value):
    with pytest.raises(Rejected) as info:
        format_ms(value)
    assert info.value.reason == "bad_value"


def test_format_rate():
    assert format_rate(1) == ""
    assert format_rate(1.0) == ""
    assert format_rate(0.5) == "|@0.5"
    assert format_rate(Fraction(1, 10)) == "|@0.1"
    assert format_rate(1.5) == ""  # 1 or more: sent unsampled, as the `statsd` package does
    assert format_rate(2) == ""
    for bad in (0, -0.1, "0.5", None, math.nan, False):
        with pytest.raises(Rejected) as info:
            format_rate(bad)
        assert info.value.reason == "bad_rate"


def test_set_members_are_encoded_injectively():
    assert format_set_member("bob@example.com") == "bob%40example.com"
    assert format_set_member("a:b|c\nd") == "a%3Ab%7Cc%0Ad"
    assert format_set_member(42) == "42"
    assert format_set_member(2.3) == "2.3"  # as `statsd` sends it: str(2.3)
    assert format_set_member("é") == "%C3%A9"
    for bad in ("", None, True, b"x", [1]):
        with pytest.raises(Rejected):
            format_set_member(bad)


@given(st.text(min_size=1), st.text(min_size=1))
def test_distinct_set_members_stay_distinct(first, second):
    if first != second:
        assert format_set_member(first) != format_set_member(second)


def test_parse_line():
    assert parse_line("app.x:3|c|@0.5|#env:prod,flag") == Metric(
        "app.x", "c", 3, 0.5, {"env": "prod", "flag": None}
    )
    assert parse_line("g:-4.5|g") == Metric("g", "g", -4.5, 1.0, {}, delta=True)
    assert parse_line("g:+0|g") == Metric("g", "g", 0, 1.0, {}, delta=True)
    assert parse_line("s:bob%40x|s") == Metric("s", "s", "bob@x", 1.0, {})
    assert parse_line("t:12.500|ms").value == 12.5


@settings(max_examples=300)
@given(
    name=st.text(),
    tags=st.dictionaries(st.text(), st.text(), max_size=4),
    member=st.text(min_size=1),
)
def test_no_input_breaks_a_line_or_injects_a_metric(name, tags, member):
    """Whatever the text, a set line is one line with one group, and its tags are exactly
    the tags given (as sanitised)."""
    try:
        head = sanitize_name(name)
    except Rejected:
        return
    line = f"{head}:{format_set_member(member)}|s{format_tags(tags)}"
    assert "\n" not in line
    assert "\r" not in line
    assert line.isascii()
    key, groups, tag_list = reference_parse(line)
    assert key == head
    assert len(groups) == 1
    assert groups[0][1] == "s"
    assert len(groups[0]) == 2  # no sample-rate field slipped in
    assert len(tag_list) == len({sanitize_tag(k) for k in tags})
    assert all(tag.count(":") == 1 for tag in tag_list)
    assert parse_line(line).value == member
