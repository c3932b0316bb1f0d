"""Can an observer of the wire link a user's pseudonyms across a rotation by the values that
travel with them? (docs/metrics.md, "Threat model")

Seven managers (an eighth opted out), each of another team (so each squad page has its own
size), are all active in
every flush interval of two days; the key rotates at midnight (freezegun moves the clock a
day). The observer reads every datagram. A pseudonym's fingerprint is the multiset of the
other metrics that share its datagram, or, when its datagram holds nothing else, of every
metric of the same flush interval; each pseudonym of day 1 is matched to the day-2 pseudonym
of the nearest fingerprint, ties split evenly. Chance is one correct match in seven.

Before `Client.set_apart` the pseudonym shared the request's datagram and every manager was
relinked; the figure for the code before and after is in the closing note of issue 12.
"""

from __future__ import annotations

import datetime as dt
import random
import socket
from collections import Counter

import pytest
from freezegun import freeze_time

from statsd_metrics.privacy import UserHasher

SECRET = "5d2a8f1c9e4b7a3062d8c5f1e9b4a7d3c0f6e2a9b5d1c8f4e7a3b6d2c9f0e5a1"
USERS = 8
INTERVALS = 3  # flush intervals a day in which every manager is active
NOISY = (".latency:", ".db.", ".api.", ".in_flight:", ".quota.")  # durations and levels


class Sink:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def pending(self) -> list[list[str]]:
        self.sock.setblocking(False)
        datagrams = []
        try:
            while True:
                datagrams.append(self.sock.recv(65535).decode("ascii").split("\n"))
        except BlockingIOError:
            return datagrams


def observe_day(app, sink, frozen, rng) -> list[list[list[str]]]:
    """The datagrams of each flush interval of one day: every manager views the squad."""
    client = app.extensions["statsd_metrics"].client
    webs = app.extensions["linkage.webs"]
    intervals = []
    for _ in range(INTERVALS):
        datagrams: list[list[str]] = []
        for n in rng.sample(range(1, USERS + 1), USERS):
            webs[n].get("/squad")
            client.flush()  # the client's own flush after a lone request
            datagrams += sink.pending()
            frozen.tick(dt.timedelta(seconds=1))
        frozen.tick(dt.timedelta(seconds=10 - USERS))  # the interval's end
        client.flush()
        datagrams += sink.pending()
        intervals.append(datagrams)
    return intervals


def fingerprints(intervals) -> dict[str, Counter]:
    """What an observer ties to each pseudonym seen in one day's datagrams."""
    found: dict[str, Counter] = {}
    for datagrams in intervals:
        everything = [line for d in datagrams for line in d if "|s" not in line]
        for datagram in datagrams:
            members = [line.split(":")[1].split("|")[0] for line in datagram if "|s" in line]
            others = [line for line in datagram if "|s" not in line]
            values = others or everything  # alone in its datagram: the interval's metrics
            for member in members:
                found.setdefault(member, Counter()).update(
                    line for line in values if not any(n in line for n in NOISY)
                )
    return found


def linkage(day1: dict[str, Counter], day2: dict[str, Counter], truth: dict[str, str]) -> float:
    """Expected correct matches when ties are broken at random."""
    correct = 0.0
    for pseudonym, print1 in day1.items():
        scores = {p2: sum((print1 & print2).values()) for p2, print2 in day2.items()}
        best = [p2 for p2, score in scores.items() if score == max(scores.values())]
        correct += (truth[pseudonym] in best) / len(best)
    return correct


@pytest.mark.parametrize("sizes", ["buckets", "exact"])  # exact: pages tell teams apart
def test_pseudonyms_of_two_days_cannot_be_linked_by_what_travels_with_them(make_app, sizes):
    sink = Sink()
    rng = random.Random(12)
    with freeze_time("2026-06-01 09:00:00") as frozen:
        app = make_app(
            STATSD_HOST="127.0.0.1", STATSD_PORT=sink.port, STATSD_FLUSH_INTERVAL=3600,
            STATSD_METRICS_USER_HASH_SECRET=SECRET, DEMO_USERS=USERS, STATSD_METRICS_SIZES=sizes,
        )  # fmt: skip
        webs = {}
        for n in range(1, USERS + 1):
            webs[n] = app.test_client()
            webs[n].post("/login", data={"username": f"manager{n}", "password": f"pass-{n}"})
            webs[n].post("/sync")  # each team's squad, each page its own size
        app.extensions["linkage.webs"] = webs
        app.extensions["statsd_metrics"].client.flush()
        frozen.tick(dt.timedelta(hours=1))
        sink.pending()
        hasher = UserHasher(SECRET)
        ids = [n for n in webs if n % 7]  # every seventh demo manager opted out
        first = {hasher.pseudonym(n): n for n in ids}
        day1 = fingerprints(observe_day(app, sink, frozen, rng))
        frozen.tick(dt.timedelta(days=1))  # the next day: the key has rotated
        second = {n: hasher.pseudonym(n) for n in ids}
        day2 = fingerprints(observe_day(app, sink, frozen, rng))
    sink.sock.close()

    assert set(day1) == set(first)  # every manager's pseudonym was seen, each day
    assert set(day2) == set(second.values())
    truth = {p1: second[n] for p1, n in first.items()}
    correct = linkage(day1, day2, truth)
    chance = len(truth) * (1 / len(truth))
    message = f"{correct:.2f} of {len(truth)} relinked (chance: {chance:.2f})"
    print(message)
    assert correct <= chance + 1e-9, message
