"""Real sockets on loopback, and the injected clock and resolver the client accepts."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator

import pytest

from statsd_metrics import Client


class Sink:
    """A real aggregator-side socket: what reaches it is what the client sent, byte for byte."""

    def __init__(self, family: int = socket.AF_INET, kind: int = socket.SOCK_DGRAM) -> None:
        host = "::1" if family == socket.AF_INET6 else "127.0.0.1"
        self.sock = socket.socket(family, kind)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind((host, 0))
        self.port: int = self.sock.getsockname()[1]

    def recv(self, timeout: float = 2.0) -> bytes:
        """The next datagram; fails the test if none arrives within `timeout`."""
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(65535)
        except TimeoutError:
            pytest.fail(f"no datagram within {timeout}s")

    def recv_many(self, count: int, timeout: float = 5.0) -> list[bytes]:
        deadline = time.monotonic() + timeout
        received = []
        while len(received) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"{len(received)} of {count} datagrams within {timeout}s")
            received.append(self.recv(remaining))
        return received

    def pending(self) -> list[bytes]:
        """Every datagram already waiting (loopback delivers during the send call)."""
        self.sock.setblocking(False)
        received = []
        try:
            while True:
                received.append(self.sock.recv(65535))
        except BlockingIOError:
            return received
        finally:
            self.sock.setblocking(True)

    def close(self) -> None:
        self.sock.close()


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


def _wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return condition()


@pytest.fixture
def wait_until() -> Callable[..., bool]:
    """Poll (bounded) for something a background thread does."""
    return _wait_until
