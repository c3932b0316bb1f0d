"""Feature usage, domain events and privacy-safe active users."""

import datetime as dt

from freezegun import freeze_time

from statsd_metrics.business import BusinessMetrics
from statsd_metrics.privacy import UserHasher


def test_feature_usage_and_events_are_counters(client, statsd_recorder):
    business = BusinessMetrics(client, hasher=UserHasher("s"))
    business.feature_used("squad_view")
    business.feature_used("training.view")  # one path segment, whatever the word
    business.event("player_updates", 7)
    business.event("player_updates", 0)  # nothing to say
    statsd_recorder.assert_incr("app.features.squad_view")
    statsd_recorder.assert_incr("app.features.training_view")
    statsd_recorder.assert_incr("app.events.player_updates", 7)
    assert len(statsd_recorder.filter("app.events.player_updates")) == 1


@freeze_time("2026-05-01 12:00:00")
def test_active_users_go_to_a_set_as_pseudonyms(client, statsd_recorder):
    hasher = UserHasher("secret")
    business = BusinessMetrics(client, hasher=hasher)
    business.user_active(4242)
    business.user_active("ana@example.org")
    members = [m.value for m in statsd_recorder.filter("app.users.active", "s")]
    assert members == [hasher.pseudonym(4242), hasher.pseudonym("ana@example.org")]
    assert not any("4242" in m or "ana" in m or "example" in m for m in members)


def test_opted_out_users_send_nothing(client, statsd_recorder):
    business = BusinessMetrics(client, hasher=UserHasher("s"))
    business.user_active(1, opted_out=True)
    assert statsd_recorder.metrics == []


def test_daily_active_counts_each_user_once_per_utc_day(client, statsd_recorder):
    with freeze_time("2026-05-01 23:00:00") as frozen:
        business = BusinessMetrics(client, hasher=UserHasher("s"))
        for user in (1, 2, 1, 1, 2, 3):
            business.user_active(user)
        assert statsd_recorder.total("app.users.daily_active") == 3
        assert len(statsd_recorder.filter("app.users.active")) == 6  # every activity
        frozen.tick(dt.timedelta(hours=1))  # a new day
        business.user_active(1)
        business.user_active(1)
        assert statsd_recorder.total("app.users.daily_active") == 4


def test_daily_memory_is_bounded(client, statsd_recorder):
    business = BusinessMetrics(client, hasher=UserHasher("s"), max_daily_users=2)
    for user in range(5):
        business.user_active(user)
        business.user_active(user)
    assert statsd_recorder.total("app.users.daily_active") == 2  # newcomers past the bound
    assert len(business._seen_today) == 2
