"""Real sockets on loopback, and the injected clock and resolver the client accepts."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from statsd_metrics import Client
from support.net import UdpSink as Sink
from support.net import wait_until as _wait_until


@pytest.fixture
def sink() -> Iterator[Sink]:
    receiver = Sink()
    yield receiver
    receiver.close()


@pytest.fixture
def make_client() -> Iterator[Callable[..., Client]]:
    """Clients closed after the test. Buffered ones flush only when the test says so (the
    flush interval is an hour), unless the test passes its own."""
    clients: list[Client] = []

    def make(*args: object, **kwargs: object) -> Client:
        kwargs.setdefault("flush_interval", 3600)
        client = Client(*args, **kwargs)  # type: ignore[arg-type]
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def udp(sink: Sink, make_client: Callable[..., Client]) -> Callable[..., Client]:
    """A client to `sink`, with any other option."""

    def make(**kwargs: object) -> Client:
        return make_client("127.0.0.1", sink.port, **kwargs)

    return make


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def wait_until() -> Callable[..., bool]:
    """Poll (bounded) for something a background thread does."""
    return _wait_until
