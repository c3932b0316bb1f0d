"""An attacker's audit of the wire: probe identifiers go in through HTTP, none comes out.

The example app is served on loopback with its client sending to a UDP socket; distinctive
user names, e-mails, user ids, ids in paths, tokens in query strings, client addresses and
User-Agents are sent through it; every byte of every datagram is then searched for them. And a
datagram that holds a set member (a pseudonym) holds nothing else (docs/metrics.md, "Threat
model").
"""

from __future__ import annotations

import re
import socket

import requests

from examples.teamapp.serving import serve_in_thread
from tests.examples.conftest import SECRET

ID_BASE = 5_938_270_000  # the managers' ids: 5938270001, ...
PROBES = {
    "user id": "593827",
    "user name": "probeuser",
    "e-mail": "probe-mail-4417",
    "e-mail domain": "probe-domain",
    "id in a path": "8765432187",
    "token in a query string": "probetoken",
    "client address": r"203[._-]0[._-]113",
    "User-Agent": "probeagent",
    "demo user name": "manager",
    "password": "pass-",
}


def test_no_probe_reaches_the_wire_and_pseudonyms_travel_alone(make_app):
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    app = make_app(
        STATSD_HOST="127.0.0.1", STATSD_PORT=receiver.getsockname()[1], TRUSTED_PROXIES=1,
        STATSD_METRICS_USER_HASH_SECRET=SECRET, DEMO_USER_ID_BASE=ID_BASE, DEMO_USERS=3,
        LOCKOUT_ATTEMPTS=2, RATE_LIMITS={"login": (6, 60.0), "sync": (100, 1.0)},
    )  # fmt: skip
    with serve_in_thread(app) as url:
        for n in (1, 2, 3):
            with requests.Session() as web:
                web.headers["User-Agent"] = f"ProbeAgent/{n}.0 (probeagent-{n})"
                web.headers["X-Forwarded-For"] = f"203.0.113.{100 + n}"
                for name in ("probeuser7731", "probe-mail-4417@probe-domain.example"):
                    web.post(f"{url}/login", data={"username": name, "password": "probe"})
                web.post(f"{url}/login", data={"username": f"manager{n}", "password": "x"})
                web.post(f"{url}/login", data={"username": f"manager{n}", "password": f"pass-{n}"})
                web.post(f"{url}/sync?token=probetoken-{n}")
                web.get(f"{url}/squad?token=probetoken-{n}&email=probe-mail-4417@x.org")
                web.get(f"{url}/players/8765432187")  # not theirs
                web.get(f"{url}/players/{8765432187 * 10**12}")  # cannot be an id
                web.post(f"{url}/training/8765432187/accept?token=probetoken")
                web.get(f"{url}/probeuser/{ID_BASE + n}?token=probetoken")  # no route
            for _ in range(8):  # a lockout, then the rate limit
                requests.post(f"{url}/login", data={"username": "manager1", "password": "probe"},
                              headers={"X-Forwarded-For": "203.0.113.9"}, timeout=5)  # fmt: skip
    client = app.extensions["statsd_metrics"].client
    client.close()  # sends the pseudonyms, which otherwise wait for their interval
    receiver.setblocking(False)
    datagrams = []
    try:
        while True:
            datagrams.append(receiver.recv(65535).decode("ascii"))
    except BlockingIOError:
        receiver.close()

    wire = "\n".join(datagrams)
    assert "teamapp.security.invalid_ids" in wire  # the probes did reach the app
    assert "teamapp.security.lockouts" in wire
    assert "teamapp.security.rate_limited.login" in wire
    found = {what: p for what, p in PROBES.items() if re.search(p, wire, re.IGNORECASE)}
    assert found == {}

    with_members = [d.split("\n") for d in datagrams if "|s" in d]
    assert sum(len(d) for d in with_members) == 3, (
        with_members
    )  # one pseudonym per manager, once each
    mixed = [d for d in with_members if not all(line.endswith("|s") for line in d)]
    assert mixed == []
