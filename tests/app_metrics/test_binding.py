import statsd_metrics
from statsd_metrics.security import SecurityMetrics


def test_helpers_without_a_client_follow_the_default_client(statsd_recorder, monkeypatch):
    monkeypatch.delenv("STATSD_PREFIX", raising=False)
    security = SecurityMetrics()  # built before configure(), as at import time
    statsd_metrics.configure(prefix="first", port=9)
    security.lockout()
    statsd_metrics.configure(prefix="second", port=9)  # closes the first client
    security.lockout()
    statsd_metrics.configure(prefix=None, port=9)
    statsd_recorder.assert_incr("first.security.lockouts")
    statsd_recorder.assert_incr("second.security.lockouts")
