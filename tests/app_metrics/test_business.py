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


def _worker(port: int, secret: str) -> None:
    from statsd_metrics import Client

    with Client(prefix="app", port=port) as client:
        business = BusinessMetrics(client, hasher=UserHasher(secret))
        for _ in range(3):
            business.user_active(42)


def test_one_user_served_by_four_worker_processes_is_one_member(sink):
    # Forked like gunicorn's workers: each its own client, all the same secret.
    import multiprocessing

    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_worker, args=(sink.port, SECRET)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(10)
        assert worker.exitcode == 0
    lines = [line for d in sink.pending() for line in d.decode().split("\n")]
    assert len(lines) == 4  # one per process: each deduplicates its own
    assert {line.split(":")[0] for line in lines} == {"app.users.active"}
    assert len(set(lines)) == 1  # the aggregator's count, of the interval and of the day: 1
