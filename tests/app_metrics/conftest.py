import pytest

from statsd_metrics import Client


@pytest.fixture
def client():
    """A client whose lines the active recorder captures (port 9: nothing would listen)."""
    with Client(prefix="app", port=9) as c:
        yield c


@pytest.fixture
def report_all(monkeypatch):
    """Shared gauges reported only when the test says so: the reporter thread (started by
    any earlier test) then finds nothing to do, and the deltas on the wire are exact."""
    from statsd_metrics import shared_gauge

    report = shared_gauge.report_all
    monkeypatch.setattr(shared_gauge, "report_all", lambda: None)
    return report
