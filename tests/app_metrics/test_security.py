from statsd_metrics.security import SecurityMetrics


def test_security_events_are_counters_without_identity(client, statsd_recorder):
    security = SecurityMetrics(client)
    security.login_succeeded()
    security.login_failed()
    security.login_failed()
    security.login_blocked()
    security.lockout()
    security.rate_limited("login")
    security.rate_limited("api/v1.sync")
    statsd_recorder.assert_incr("app.security.login.succeeded")
    assert statsd_recorder.total("app.security.login.failed") == 2
    statsd_recorder.assert_incr("app.security.login.blocked")
    statsd_recorder.assert_incr("app.security.lockouts")
    statsd_recorder.assert_incr("app.security.rate_limited.login")
    statsd_recorder.assert_incr("app.security.rate_limited.api_v1_sync")
    assert {m.type for m in statsd_recorder.metrics} == {"c"}
