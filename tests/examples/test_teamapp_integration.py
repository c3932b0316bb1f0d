"""The example app against a real UDP socket on 127.0.0.1, driven by the traffic generator.

Black-box, as the aggregator would see it: the datagrams that arrive. Two promises are
checked on them: every family of metric the dashboards need is there, and no real identifier
(user id, user name, e-mail, password, client address) ever is.
"""

import re
import time

import pytest

from examples.teamapp.app import create_app
from examples.teamapp.chpp_sim import ChppSimulator, SimSettings, create_sim_app
from examples.teamapp.serving import serve_in_thread
from examples.teamapp.traffic import TrafficGenerator, TrafficPlan
from statsd_metrics import shared_gauge
from statsd_metrics.process import ProcessCollector
from tests.examples.conftest import SECRET

USER_ID_BASE = 7_340_000
LINE = re.compile(r"^[A-Za-z0-9_.-]+:[+-]?[0-9A-Za-z.%_-]+\|(c|g|ms|s)$")


@pytest.mark.slow
def test_a_day_of_traffic_reaches_the_socket_complete_and_anonymous(sink):
    sim = ChppSimulator(SimSettings(latency_ms=2, error_rate=0.02, rate_limit=25, window_s=2))
    with serve_in_thread(create_sim_app(sim)) as chpp_url:
        app = create_app({
            "CHPP_URL": chpp_url,
            "STATSD_HOST": "127.0.0.1",
            "STATSD_PORT": sink.port,
            "STATSD_METRICS_USER_HASH_SECRET": SECRET,
            "DEMO_USER_ID_BASE": USER_ID_BASE,
            "DEMO_USERS": 12,
            "TRUSTED_PROXIES": 1,  # the traffic generator plays the proxy
            "LOCKOUT_SECONDS": 1,
        })  # fmt: skip
        client = app.extensions["statsd_metrics"].client
        collector = ProcessCollector(client, host="itest")
        with serve_in_thread(app) as app_url:
            plan = TrafficPlan(duration=4, users=12, peak_visits=10, error_burst=True,
                               rate_limit_storm=True, chpp_url=chpp_url, seed=3)  # fmt: skip
            report = TrafficGenerator(app_url, plan).run()
        collector.collect()
        shared_gauge.report_all()  # every request is over: the in-flight levels are back at 0
        client.flush()
        app.extensions["teamapp"].chpp.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not any(b"process.itest" in d for d in sink.datagrams):
        time.sleep(0.05)
    client.close()  # the pseudonyms, which otherwise wait for their interval
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not any(b"|s" in d for d in sink.datagrams):
        time.sleep(0.05)

    assert report.visits > 3
    assert report.statuses[200] > 10
    lines = sink.lines()
    assert len(lines) > 200
    assert [line for line in lines if not LINE.match(line)] == []
    names = {line.split(":")[0] for line in lines}
    expected = [
        r"teamapp\.http\.login\.latency",
        r"teamapp\.http\.squad\.status\.2xx\.200",
        r"teamapp\.http\.squad\.response_bytes",
        r"teamapp\.http\.unmatched\.status\.4xx\.404",
        r"teamapp\.process\.itest\.(cpu\.percent|memory\.rss|threads|open_files|uptime)",
        r"teamapp\.db\.teamapp\.query\.(select|insert|update)",
        r"teamapp\.api\.chpp\.players\.latency",
        r"teamapp\.api\.chpp\.players\.outcome\.ok",
        r"teamapp\.api\.chpp\.quota\.remaining",
        r"teamapp\.users\.active",
        r"teamapp\.features\.(squad_view|sync)",
        r"teamapp\.events\.(player_updates|syncs_completed)",
        r"teamapp\.events\.training_recommendations_made",
        r"teamapp\.security\.login\.(succeeded|failed)",
        r"teamapp\.security\.lockouts",
        r"teamapp\.security\.rate_limited\.(login|sync)",
    ]
    missing = [p for p in expected if not any(re.fullmatch(p, n) for n in names)]
    assert missing == []
    assert not [n for n in names if ".http.health." in n or ".http.static." in n]
    in_flight: dict[str, int] = {}
    for line in lines:
        name, _, rest = line.partition(":")
        if name.endswith(".in_flight"):
            in_flight[name] = in_flight.get(name, 0) + int(rest.split("|")[0])
    assert all(total == 0 for total in in_flight.values()), in_flight

    # Nothing that identifies a manager, anywhere in any datagram.
    wire = b"\n".join(sink.datagrams).decode("ascii")
    identifiers = {
        "user id": str(USER_ID_BASE)[:5],
        "user name": "manager",
        "e-mail": "@",
        "e-mail domain": "example",
        "password": "pass-",
        "IPv4 address": r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}",
        "documentation addresses": r"192[._-]0[._-]2|198[._-]51[._-]100|203[._-]0[._-]113",
    }
    found = {what: p for what, p in identifiers.items() if re.search(p, wire)}
    assert found == {}
