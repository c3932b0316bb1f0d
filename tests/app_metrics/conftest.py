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


class _Sink:
    """A UDP socket on loopback: what reaches it is what the client sent."""

    def __init__(self):
        import socket

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def pending(self) -> list[bytes]:
        self.sock.setblocking(False)
        received = []
        try:
            while True:
                received.append(self.sock.recv(65535))
        except BlockingIOError:
            return received


@pytest.fixture
def sink():
    receiver = _Sink()
    yield receiver
    receiver.sock.close()


@pytest.fixture
def sink_client(sink):
    """A buffered client to `sink` that flushes only when told to."""
    with Client(prefix="app", port=sink.port, flush_interval=3600) as c:
        yield c
