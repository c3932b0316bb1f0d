"""A day of users, compressed: drives the team-manager app the way its managers would.

Over `duration` seconds the request rate follows a day's curve (quiet night, a lunch peak, a
bigger evening peak). Each visit is a manager's session: log in (now and then with a typo), look
at the squad, sync from CHPP, open and edit players, read and accept training advice, log out.
Around them: a load balancer polling `/health`, browsers fetching the stylesheet, scanners
probing URLs that do not exist, and a credential-stuffing attempt that locks accounts.

On request it adds trouble: `error_burst` puts the CHPP simulator into an error burst for a
while, `rate_limit_storm` makes many managers sync at once (CHPP quota exhausted, HTTP 429) and
one of them press sync again and again (the app's own limit).

Bounded in time and count, and it talks to loopback addresses only. Client addresses are sent
as `X-Forwarded-For` from the documentation ranges (RFC 5737): they exist only in headers.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import math
import random
import re
import threading
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests

from examples.teamapp.app import demo_user

PLAYER_LINK = re.compile(r'href="/players/(\d+)"')
ACCEPT_FORM = re.compile(r'action="(/training/\d+/accept)"')
SYNC_INTERVAL = 3.1  # just over the app's default limit of one sync per 3 s per manager
SCANNER_PATHS = ("/wp-login.php", "/.env", "/admin", "/api/v1/users/1", "/phpmyadmin/index.php")


def require_loopback(url: str) -> str:
    host = urlsplit(url).hostname or ""
    if host != "localhost":
        try:
            if not ipaddress.ip_address(host).is_loopback:
                raise ValueError
        except ValueError:
            raise ValueError(f"traffic goes to loopback addresses only, not {host!r}") from None
    return url.rstrip("/")


def client_address(n: int) -> str:
    """A made-up client address for manager n, from the RFC 5737 documentation ranges."""
    return f"{('192.0.2', '198.51.100', '203.0.113')[n % 3]}.{n % 250 + 1}"


def day_curve(fraction: float) -> float:
    """Relative load at this point of the day (0 = midnight): 0.1 at night, 1.0 at the peak."""
    hour = 24 * (fraction % 1)
    lunch = math.exp(-((hour - 12.5) ** 2) / 4)
    evening = math.exp(-((hour - 20) ** 2) / 3)
    return 0.1 + 0.6 * lunch + 0.9 * evening * (1 - 0.1 * lunch)


@dataclass
class TrafficPlan:
    duration: float = 60.0  # wall-clock seconds for the whole day
    users: int = 20  # demo managers manager1..managerN
    peak_visits: float = 6.0  # manager visits started per second at the busiest hour
    concurrency: int = 6
    max_requests: int = 200_000
    error_burst: bool = False
    rate_limit_storm: bool = False
    chpp_url: str | None = None  # needed for error bursts
    seed: int = 1


@dataclass
class TrafficReport:
    statuses: Counter = field(default_factory=Counter)
    visits: int = 0
    errors: Counter = field(default_factory=Counter)  # transport errors by type

    @property
    def requests(self) -> int:
        return sum(self.statuses.values()) + sum(self.errors.values())


class _Stop(Exception):
    """Raised inside a visit when the day is over or the request budget is spent."""


class TrafficGenerator:
    def __init__(self, app_url: str, plan: TrafficPlan, stop: threading.Event | None = None):
        self.url = require_loopback(app_url)
        self.plan = plan
        self.stop = stop or threading.Event()  # set it to end the day early
        if plan.chpp_url:
            require_loopback(plan.chpp_url)
        self.report = TrafficReport()
        self._lock = threading.Lock()
        self._deadline = 0.0

    # -- one request ----------------------------------------------------------------------------
    def _request(
        self, http: requests.Session, method: str, path: str, **kwargs
    ) -> requests.Response | None:
        with self._lock:
            if (
                self.stop.is_set()
                or time.monotonic() >= self._deadline
                or self.report.requests >= self.plan.max_requests
            ):
                raise _Stop
        try:
            response = http.request(method, self.url + path, timeout=10, **kwargs)
        except requests.RequestException as exc:
            with self._lock:
                self.report.errors[type(exc).__name__] += 1
            return None
        with self._lock:
            for r in (*response.history, response):
                self.report.statuses[r.status_code] += 1
        return response

    def _session(self, n: int) -> requests.Session:
        http = requests.Session()
        http.headers["X-Forwarded-For"] = client_address(n)
        return http

    def _login(self, http: requests.Session, n: int, password: str | None = None) -> bool:
        user = demo_user(n)
        form = {"username": user["username"], "password": password or user["password"]}
        response = self._request(http, "POST", "/login", data=form)
        return response is not None and response.ok and response.url.endswith("/squad")

    # -- behaviours -----------------------------------------------------------------------------
    def visit(self, rng: random.Random) -> None:
        """One manager's session, from login to logout."""
        n = rng.randint(1, self.plan.users)
        with self._session(n) as http:
            if rng.random() < 0.08:
                self._login(http, n, password="wrong-" + str(rng.random()))
            if not self._login(http, n):
                return
            if rng.random() < 0.3:
                self._request(http, "GET", "/static/style.css")
            squad = self._request(http, "GET", "/squad")
            if rng.random() < 0.35 or (squad is not None and "No players yet" in squad.text):
                squad = self._request(http, "POST", "/sync")
            ids = PLAYER_LINK.findall(squad.text) if squad is not None and squad.ok else []
            for _ in range(min(len(ids), rng.randint(0, 3))):
                player = "/players/" + rng.choice(ids)
                self._request(http, "GET", player)
                if rng.random() < 0.2:
                    self._request(
                        http,
                        "POST",
                        player,
                        data={
                            "position": rng.choice(("keeper", "defender", "midfielder", "forward")),
                            "notes": rng.choice(("watch form", "sell?", "future captain", "")),
                        },
                    )
            if rng.random() < 0.45:
                training = self._request(http, "GET", "/training")
                accept = ACCEPT_FORM.search(training.text) if training is not None else None
                if accept and rng.random() < 0.4:
                    self._request(http, "POST", accept.group(1))
            self._request(http, "POST", "/logout")

    def scanner(self, rng: random.Random) -> None:
        with requests.Session() as http:
            self._request(http, "GET", rng.choice(SCANNER_PATHS))

    def credential_stuffing(self, rng: random.Random) -> None:
        """Many wrong passwords for a few accounts from one address: lockouts, then 429s."""
        with self._session(997) as http:
            for _ in range(40):
                self._login(http, rng.randint(1, min(3, self.plan.users)), password="123456")

    def rate_limit_storm(self, rng: random.Random) -> None:
        """One manager keeps pressing sync (the app's own limit), then everyone syncs, twice,
        just past the app's per-manager interval: far more calls than CHPP's quota allows."""
        eager = rng.randint(1, self.plan.users)
        with self._session(eager) as http:
            if self._login(http, eager):
                for _ in range(8):
                    self._request(http, "POST", "/sync")
        with contextlib.ExitStack() as stack:
            sessions = [
                stack.enter_context(self._session(n)) for n in range(1, self.plan.users + 1)
            ]
            logged_in = [http for n, http in enumerate(sessions, 1) if self._login(http, n)]
            storm = stack.enter_context(ThreadPoolExecutor(8, thread_name_prefix="storm"))
            for round_ in range(2):
                if round_:
                    self.stop.wait(min(SYNC_INTERVAL, max(0.0, self._deadline - time.monotonic())))
                syncs = [storm.submit(self._guard, self._request, http, "POST", "/sync")
                         for http in logged_in]  # fmt: skip
                for sync in syncs:
                    sync.result()

    def error_burst(self) -> None:
        """Ask the CHPP simulator for a burst of errors lasting a twelfth of the day."""
        if not self.plan.chpp_url:
            return
        try:
            requests.post(
                self.plan.chpp_url.rstrip("/") + "/_sim/burst",
                timeout=5,
                params={"seconds": max(2.0, self.plan.duration / 12), "error_rate": 0.7},
            )
        except requests.RequestException as exc:  # no burst today; the day goes on
            with self._lock:
                self.report.errors[type(exc).__name__] += 1

    # -- the day --------------------------------------------------------------------------------
    def run(self) -> TrafficReport:
        plan = self.plan
        rng = random.Random(plan.seed)
        start = time.monotonic()
        self._deadline = start + plan.duration
        # Scheduled incidents, as fractions of the day.
        incidents: list[tuple[float, str]] = [(0.2, "scanner"), (0.35, "credential_stuffing")]
        if plan.error_burst:
            incidents.append((0.55, "error_burst"))
        if plan.rate_limit_storm:
            incidents.append((0.8, "rate_limit_storm"))
        pending: list[Future] = []
        tick = 0.05
        next_health = start
        with ThreadPoolExecutor(plan.concurrency, thread_name_prefix="traffic") as pool:
            while (now := time.monotonic()) < self._deadline and not self.stop.is_set():
                fraction = (now - start) / plan.duration
                pending = [f for f in pending if not f.done()]
                while incidents and fraction >= incidents[0][0]:
                    name = incidents.pop(0)[1]
                    if name == "error_burst":
                        self.error_burst()
                    else:
                        pending.append(
                            pool.submit(
                                self._guard, getattr(self, name), random.Random(rng.random())
                            )
                        )
                if now >= next_health:  # the load balancer's health check, once a second
                    next_health = now + 1.0
                    pending.append(pool.submit(self._guard, self._health))
                rate = plan.peak_visits * day_curve(fraction)
                arrivals = _poisson(rng, rate * tick)
                for _ in range(arrivals):
                    if len(pending) >= 4 * plan.concurrency:
                        break  # the app is saturated; a real day would queue, we skip
                    kind = self.scanner if rng.random() < 0.04 else self.visit
                    with self._lock:
                        self.report.visits += kind == self.visit
                    pending.append(pool.submit(self._guard, kind, random.Random(rng.random())))
                self.stop.wait(tick)
            for f in pending:
                f.result()
        return self.report

    def _health(self) -> None:
        with requests.Session() as http:
            self._request(http, "GET", "/health")

    def _guard(self, behaviour, *args) -> None:
        with contextlib.suppress(_Stop):
            behaviour(*args)


def _poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method: fine for the small means of one tick."""
    limit, k, p = math.exp(-mean), 0, rng.random()
    while p > limit and k < 100:
        k += 1
        p *= rng.random()
    return k


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Drive the team-manager app like a day of users.")
    parser.add_argument("--app-url", required=True)
    parser.add_argument("--chpp-url", help="the CHPP simulator, for --error-burst")
    parser.add_argument("--duration", type=float, default=TrafficPlan.duration)
    parser.add_argument("--users", type=int, default=TrafficPlan.users)
    parser.add_argument("--peak-visits", type=float, default=TrafficPlan.peak_visits)
    parser.add_argument("--error-burst", action="store_true")
    parser.add_argument("--rate-limit-storm", action="store_true")
    parser.add_argument("--seed", type=int, default=TrafficPlan.seed)
    args = parser.parse_args(argv)
    plan = TrafficPlan(
        duration=args.duration,
        users=args.users,
        peak_visits=args.peak_visits,
        error_burst=args.error_burst,
        rate_limit_storm=args.rate_limit_storm,
        chpp_url=args.chpp_url,
        seed=args.seed,
    )
    report = TrafficGenerator(args.app_url, plan).run()
    print(
        f"{report.visits} visits, {report.requests} requests, statuses "
        f"{dict(sorted(report.statuses.items()))}, transport errors {dict(report.errors)}"
    )


if __name__ == "__main__":
    main()
