"""Daily distinct members of chosen sets: the state, the flush output, the day boundary, the cap.

Time is the flush timestamp, taken from a frozen clock as the daemon takes it (`round(time())`).
"""

from __future__ import annotations

import logging
import time

import pytest
from freezegun import freeze_time
from hypothesis import given
from hypothesis import strategies as st

from aggregator.config import Config, ConfigError, from_mapping, load
from aggregator.daily import DAY, DailySets, matcher
from aggregator.flush import Flush
from aggregator.parse import Parser
from aggregator.state import Interval, Store

ACTIVE = "teamapp.users.active"


class Aggregator:
    """Parser, store and flush of one configuration; each flush merges one interval per
    receiver (a list of datagrams each), stamped from the (frozen) clock."""

    def __init__(self, **config) -> None:
        config.setdefault("flush_interval", 10)
        self.cfg = from_mapping(config)
        self.parser, self.store = Parser(self.cfg), Store(max_names=self.cfg.max_metric_names)
        self.flush = Flush(self.cfg)
        self.flush.init_store(self.store)

    def __call__(self, *receivers: list[bytes]) -> dict[str, float]:
        intervals = []
        for datagrams in receivers:
            iv = Interval()
            for d in datagrams:
                self.parser.feed(d, iv)
            intervals.append(iv)
        self.store.merge(intervals, self.cfg.prefix_stats, None)
        ts = round(time.time())
        lines = b"".join(self.flush(self.store, ts).payload).decode().splitlines()
        return {path: float(value) for path, value, _ in (line.split(" ") for line in lines)}


def members(name: str, *pseudonyms: str, tags: str = "") -> bytes:
    return "\n".join(f"{name}:{p}|s{tags}" for p in pseudonyms).encode()


# -- the state -----------------------------------------------------------------------------


def test_members_count_once_per_key_however_often_they_come():
    daily = DailySets()
    daily.roll(1_800_000_000)
    assert daily.add("a", {"p1", "p2"}, cap=100) == 0
    assert daily.add("a", {"p2", "p3"}, cap=100) == 0
    assert daily.add("b", {"p1"}, cap=100) == 0
    assert (daily.count("a"), daily.count("b"), daily.count("c")) == (3, 1, 0)
    assert daily.total == 4


def test_the_state_holds_no_member_only_hashes():
    daily = DailySets()
    daily.roll(0)
    daily.add("a", {"0123456789abcdef"}, cap=10)
    held = daily.members["a"]
    assert held == {hash("0123456789abcdef")}
    assert not any(isinstance(m, str) for m in held)


def test_a_new_utc_day_forgets_everything():
    daily = DailySets()
    midnight = 20_000 * DAY
    assert daily.roll(midnight - 1)
    daily.add("a", {"p1", "p2"}, cap=10)
    assert not daily.roll(midnight - DAY)  # same day, earlier second: still that day
    assert daily.count("a") == 2
    assert daily.roll(midnight)
    assert (daily.count("a"), daily.total, daily.members) == (0, 0, {})


def test_the_cap_holds_over_every_key_and_refuses_only_newcomers():
    daily = DailySets()
    daily.roll(0)
    assert daily.add("a", {"p1", "p2"}, cap=3) == 0
    assert daily.add("b", {"q1", "q2", "q3"}, cap=3) == 2  # one fits, two refused
    assert daily.add("a", {"p1", "p2"}, cap=3) == 0  # known members are no newcomers
    assert daily.add("b", ["q9", "q9"], cap=3) == 2  # a list: each copy is refused
    assert daily.total == 3
    assert daily.count("a") + daily.count("b") == 3
    assert daily.dropped == 4


def test_keys_no_longer_selected_are_forgotten():
    daily = DailySets()
    daily.roll(0)
    daily.add("a.users.active", {"p1"}, cap=10)
    daily.add("b", {"p1", "p2"}, cap=10)
    daily.keep_only(matcher(["*users.active"]))
    assert list(daily.members) == ["a.users.active"]
    assert daily.total == 1


@pytest.mark.parametrize(
    ("patterns", "key", "selected"),
    [
        (Config().daily_sets, "users.active", True),
        (Config().daily_sets, "teamapp.users.active", True),
        (Config().daily_sets, "teamapp.users.active;env=prod;host=a", True),
        (Config().daily_sets, "teamapp.users.active.x", False),
        (Config().daily_sets, "teamapp.users.inactive", False),
        (Config().daily_sets, "teamapp.users.active_x;k=users.active", False),
        (("shop.*.visitors", "a?c"), "shop.eu.visitors", True),
        (("shop.*.visitors", "a?c"), "abc", True),
        (("shop.*.visitors", "a?c"), "abbc", False),
        ((), "users.active", False),
    ],
)
def test_daily_sets_are_glob_patterns_on_the_name_before_the_tags(patterns, key, selected):
    assert matcher(patterns)(key) is selected


# -- the flush -----------------------------------------------------------------------------


@freeze_time("2026-12-03 10:00:00", tick=False)
def test_daily_count_is_the_running_distinct_count_beside_count():
    agg = Aggregator()
    first = agg([members(ACTIVE, "u1", "u2")], [members(ACTIVE, "u2", "u3")])
    assert first["stats.sets.teamapp.users.active.count"] == 3
    assert first["stats.sets.teamapp.users.active.daily_count"] == 3
    second = agg([members(ACTIVE, "u1")], [members(ACTIVE, "u4")])
    assert second["stats.sets.teamapp.users.active.count"] == 2
    assert second["stats.sets.teamapp.users.active.daily_count"] == 4
    idle = agg([])  # reported like the set's count: 0 for the interval, the day stays
    assert idle["stats.sets.teamapp.users.active.count"] == 0
    assert idle["stats.sets.teamapp.users.active.daily_count"] == 4


@freeze_time("2026-12-03 10:00:00")
def test_only_selected_sets_get_a_daily_count():
    agg = Aggregator(daily_sets=["visitors"])
    out = agg([members("visitors", "a", "b") + b"\n" + members(ACTIVE, "u1")])
    assert out["stats.sets.visitors.daily_count"] == 2
    assert "stats.sets.teamapp.users.active.daily_count" not in out
    assert "stats.sets.teamapp.users.active.count" in out
    off = Aggregator(daily_sets=[])([members(ACTIVE, "u1")])
    assert not [path for path in off if "daily_count" in path]


@freeze_time("2026-12-03 10:00:00")
@pytest.mark.parametrize(
    ("config", "path"),
    [
        ({}, "stats.sets.teamapp.users.active.daily_count;env=prod"),
        ({"global_suffix": "h1"}, "stats.sets.teamapp.users.active.daily_count.h1;env=prod"),
        ({"tag_mode": "path"}, "stats.sets.teamapp.users.active.env-prod.daily_count"),
        (
            {"legacy_namespace": False, "global_prefix": "m", "prefix_set": "s"},
            "m.s.teamapp.users.active.daily_count;env=prod",
        ),
    ],
)
def test_the_daily_path_is_the_count_path_with_daily_count_as_its_field(config, path):
    out = Aggregator(**config)([members(ACTIVE, "u1", "u2", tags="|#env:prod")])
    assert out[path] == 2
    assert out[path.replace("daily_count", "count")] == 2


@freeze_time("2026-12-03 10:00:00")
def test_tag_combinations_are_counted_apart():
    tagged = members(ACTIVE, "u1", "u2", tags="|#env:a")
    out = Aggregator()([tagged + b"\n" + members(ACTIVE, "u1")])
    assert out["stats.sets.teamapp.users.active.daily_count;env=a"] == 2
    assert out["stats.sets.teamapp.users.active.daily_count"] == 1


def test_the_day_boundary_is_00_00_utc_of_the_flush_timestamp():
    with freeze_time("2026-12-03 23:59:50") as clock:
        agg = Aggregator()
        assert agg([members(ACTIVE, "u1", "u2")])[f"stats.sets.{ACTIVE}.daily_count"] == 2
        clock.tick(9)  # 23:59:59: still the 3rd
        assert agg([members(ACTIVE, "u1", "u3")])[f"stats.sets.{ACTIVE}.daily_count"] == 3
        clock.tick(1)  # 00:00:00 on the 4th: a new day
        out = agg([members(ACTIVE, "u1")])
        assert out[f"stats.sets.{ACTIVE}.daily_count"] == 1
        clock.tick(10)
        assert agg([])[f"stats.sets.{ACTIVE}.daily_count"] == 1
        assert agg.store.daily.total == 1


def test_with_delete_sets_the_daily_count_goes_on_until_the_day_ends():
    with freeze_time("2026-12-03 23:59:40") as clock:
        agg = Aggregator(delete_sets=True)
        agg([members(ACTIVE, "u1", "u2")])
        clock.tick(10)
        idle = agg([])
        assert f"stats.sets.{ACTIVE}.count" not in idle
        assert idle[f"stats.sets.{ACTIVE}.daily_count"] == 2
        clock.tick(10)  # the next day: nothing left to report
        assert not [path for path in agg([]) if path.startswith("stats.sets.")]


def test_the_cap_counts_drops_as_an_internal_counter_and_logs_once_a_day(caplog):
    caplog.set_level(logging.INFO, logger="aggregator.flush")
    with freeze_time("2026-12-03 12:00:00") as clock:
        agg = Aggregator(daily_max_members=3)
        out = agg([members(ACTIVE, "u1", "u2", "u3", "u4", "u5")])
        assert out[f"stats.sets.{ACTIVE}.count"] == 5  # the interval's count is untouched
        assert out[f"stats.sets.{ACTIVE}.daily_count"] == 3
        assert out["stats_counts.statsd.daily_sets.dropped_members"] == 2
        assert out["stats.statsd.daily_sets.dropped_members"] == 0.2  # per second of 10
        clock.tick(10)
        out = agg([members(ACTIVE, "u6", "u7")])
        assert out["stats_counts.statsd.daily_sets.dropped_members"] == 2
        assert out[f"stats.sets.{ACTIVE}.daily_count"] == 3
        assert agg.store.daily.dropped == 4
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        assert "daily_max_members (3)" in warnings[0].getMessage()
        clock.tick(DAY)
        out = agg([members(ACTIVE, "u6", "u7")])
        assert out[f"stats.sets.{ACTIVE}.daily_count"] == 2
        assert out["stats_counts.statsd.daily_sets.dropped_members"] == 0
    assert not any("u6" in r.getMessage() for r in caplog.records)


@freeze_time("2026-12-03 12:00:00")
def test_a_reload_keeps_the_day_for_sets_still_selected():
    agg = Aggregator()
    agg([members(ACTIVE, "u1", "u2") + b"\n" + members("visitors", "v1")])
    agg.flush = Flush(from_mapping({"flush_interval": 10, "daily_sets": ["*users.active"]}))
    out = agg([members(ACTIVE, "u3")])
    assert out[f"stats.sets.{ACTIVE}.daily_count"] == 3
    agg.flush = Flush(from_mapping({"flush_interval": 10, "daily_sets": ["visitors"]}))
    out = agg([members("visitors", "v2")])
    assert out["stats.sets.visitors.daily_count"] == 1  # newly selected: from now on
    assert f"stats.sets.{ACTIVE}.daily_count" not in out
    assert agg.store.daily.total == 1


@freeze_time("2026-12-03 12:00:00")
def test_no_member_reaches_the_flush_output():
    agg = Aggregator()
    out = agg([members(ACTIVE, "5f3a9c0e7b1d2468", tags="|#env:prod")])
    assert not [path for path in out if "5f3a9c0e7b1d2468" in path]


# -- configuration -------------------------------------------------------------------------


def test_daily_keys_from_a_file(tmp_path):
    path = tmp_path / "agg.toml"
    path.write_text('daily_sets = ["*users.active", "shop.visitors"]\ndaily_max_members = 50\n')
    c = load(path)
    assert c.daily_sets == ("*users.active", "shop.visitors")
    assert c.daily_max_members == 50
    assert Config().daily_sets == ("*users.active",)
    assert Config().daily_max_members == 1_000_000


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"daily_sets": "*users.active"}, "'daily_sets': expected a list of glob patterns"),
        ({"daily_sets": [""]}, "'daily_sets': expected a list"),
        ({"daily_sets": [1]}, "'daily_sets': expected a list"),
        ({"daily_max_members": 0}, "'daily_max_members': must be at least 1"),
        ({"daily_max_members": 1.5}, "'daily_max_members': expected an integer"),
    ],
)
def test_bad_daily_values_name_the_key(values, message):
    with pytest.raises(ConfigError) as info:
        from_mapping(values)
    assert message in str(info.value)


@given(
    st.lists(
        st.tuples(
            st.integers(0, 2),  # day
            st.sampled_from(["a", "b;env=x"]),
            st.lists(st.text("0123456789abcdef", min_size=1, max_size=3), max_size=8),
        ),
        max_size=30,
    ),
    st.integers(1, 20),
)
def test_the_state_agrees_with_a_plain_set_of_the_days_members(flushes, cap):
    """Model: the day's distinct members per key, newcomers taken in turn up to the cap."""
    daily, model, refused = DailySets(), {}, 0
    for day, key, batch in sorted(flushes, key=lambda f: f[0]):
        if daily.roll(day * DAY + 5):
            model = {}
        members = set(batch)
        got = daily.add(key, members, cap)
        want = 0
        for member in members:  # the order the state meets them in
            if member in model.setdefault(key, set()):
                continue
            if sum(map(len, model.values())) < cap:
                model[key].add(member)
            else:
                want += 1
        assert got == want
        refused += want
        assert {k: daily.count(k) for k in model} == {k: len(v) for k, v in model.items()}
        assert daily.total == sum(map(len, model.values())) <= cap
    assert daily.dropped == refused
