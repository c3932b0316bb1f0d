"""The application side: an aggregator that is down, hung or nowhere to be found changes
nothing for the Flask app: every request answers, nothing is raised, the loss is counted.
(reliability/app_side.py measures the latency and error rate under gunicorn.)"""

from __future__ import annotations

import logging
import socket
import threading
import time

import pytest
from flask import Flask

from statsd_metrics import Client
from statsd_metrics.flask import StatsdMetrics

from .conftest import wait_until


def slow_dns(answer: threading.Event, port: int):
    """A resolver that hangs until `answer` is set (a DNS server that does not reply)."""

    def resolve(host, _port, family, kind):
        answer.wait(10)
        return [(socket.AF_INET, kind, 17, "", ("127.0.0.1", port))]

    return resolve


def test_a_dns_that_does_not_answer_holds_up_neither_start_nor_metrics():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as aggregator:
        aggregator.bind(("127.0.0.1", 0))
        aggregator.settimeout(5)
        answer = threading.Event()
        began = time.monotonic()
        client = Client("statsd.internal", aggregator.getsockname()[1],
                        resolver=slow_dns(answer, aggregator.getsockname()[1]))  # fmt: skip
        client.incr("waiting")
        assert time.monotonic() - began < 0.5  # neither the construction nor the metric waited
        answer.set()  # DNS answers: what waited in the buffer goes out
        assert aggregator.recv(100) == b"waiting:1|c"
        client.close()
    assert client.stats()["dropped_total"] == 0


class StalledTcpAggregator:
    """Accepts, never reads (a hung aggregator behind the TCP transport)."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.port = self.server.getsockname()[1]


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def app_with(client: Client) -> Flask:
    app = Flask("teamapp")

    @app.get("/squad/<int:team>")
    def squad(team: int):
        return {"team": team, "players": list(range(20))}

    StatsdMetrics(app, client=client)
    return app


@pytest.mark.parametrize("condition", ["down", "hung over TCP", "unresolvable", "DNS silent"])
def test_requests_answer_and_nothing_is_raised_whatever_the_aggregator_does(condition, caplog):
    answer = threading.Event()  # never set: the DNS stays silent
    hung = StalledTcpAggregator()
    options = {
        "down": {"host": "127.0.0.1", "port": free_udp_port()},
        "hung over TCP": {"host": "127.0.0.1", "port": hung.port, "transport": "tcp"},
        "unresolvable": {"host": "statsd.invalid", "port": 8125},
        "DNS silent": {"host": "statsd.internal", "port": 8125, "resolver": slow_dns(answer, 9)},
    }[condition]
    client = Client(prefix="teamapp", flush_interval=0.02, **options)
    web = app_with(client).test_client()
    with caplog.at_level(logging.ERROR, logger="statsd_metrics.flask"):
        statuses = [web.get(f"/squad/{i}").status_code for i in range(300)]
    assert statuses == [200] * 300
    assert not caplog.records  # no hook failed, nothing was raised
    if condition in ("down", "unresolvable"):  # known at once: each line counted as dropped
        wait_until(lambda: client.stats()["dropped_total"] > 0, what="drops counted")
        assert set(client.stats()["dropped"]) <= {"refused", "unresolved"}
    answer.set()
    client.close()
    hung.server.close()
