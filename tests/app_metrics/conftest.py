import pytest

from statsd_metrics import Client
from support.net import UdpSink


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


@pytest.fixture
def sink():
    receiver = UdpSink()
    yield receiver
    receiver.close()


@pytest.fixture
def sink_client(sink):
    """A buffered client to `sink` that flushes only when told to."""
    with Client(prefix="app", port=sink.port, flush_interval=3600) as c:
        yield c
