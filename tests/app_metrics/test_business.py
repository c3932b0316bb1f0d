"""Feature usage, domain events and privacy-safe active users."""

import secrets

from freezegun import freeze_time

from statsd_metrics.business import BusinessMetrics
from statsd_metrics.privacy import UserHasher

SECRET = secrets.token_hex(32)


def test_feature_usage_and_events_are_counters(client, statsd_recorder):
    business = BusinessMetrics(client, hasher=UserHasher(SECRET))
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
    hasher = UserHasher(SECRET)
    business = BusinessMetrics(client, hasher=hasher)
    business.user_active(4242)
    business.user_active("ana@example.org")
    members = [m.value for m in statsd_recorder.filter("app.users.active", "s")]
    assert members == [hasher.pseudonym(4242), hasher.pseudonym("ana@example.org")]
    assert not any("4242" in m or "ana" in m or "example" in m for m in members)


def test_no_process_counts_daily_users_itself(client, statsd_recorder):
    # Per-process counts overcount with several workers: the aggregator counts the day.
    business = BusinessMetrics(client, hasher=UserHasher(SECRET))
    for user in (1, 2, 1):
        business.user_active(user)
    assert statsd_recorder.names() == ["app.users.active"]
    assert not hasattr(business, "_seen_today")


def test_opted_out_users_send_nothing(client, statsd_recorder):
    business = BusinessMetrics(client, hasher=UserHasher(SECRET))
    business.user_active(1, opted_out=True)
    assert statsd_recorder.metrics == []


def test_pseudonyms_leave_apart_from_the_requests_metrics(sink_client, sink):
    business = BusinessMetrics(sink_client, hasher=UserHasher(SECRET))
    business.user_active(1)
    business.event("player_updates", 17)
    sink_client.close()
    datagrams = sink.pending()
    assert len(datagrams) == 2
    assert {d.count(b"|s") for d in datagrams} == {0, 1}
