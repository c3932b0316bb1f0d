"""`statsd-metrics up --demo`: a small instrumented app and simulated users, so that the
dashboards fill on their own from an installed package, with no example code at hand.

    python -m statsd_metrics.demo --statsd-port 8125 --duration 600

A Flask app (the extension, a SQLite database, a partner API called through an instrumented
`requests` session, business and security metrics, the process collector) serves on a free
loopback port, and a bounded loop of simulated managers logs in, views, syncs and edits, with
failed logins, a rate-limited partner API and now and then a burst of server errors. It prints
`demo: app <url>, ...` once serving, runs `--duration` seconds or until SIGTERM/SIGINT, and
stops what it started. The fuller example, a team-manager app, is examples/teamapp/ in the
repository. Needs the [demo] extra: flask, sqlalchemy, requests, psutil.
"""

from __future__ import annotations

import argparse
import logging
import random
import secrets
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import FrameType

import requests
import sqlalchemy
from flask import Flask, abort, request
from werkzeug.serving import make_server

from statsd_metrics.business import BusinessMetrics
from statsd_metrics.client import Client
from statsd_metrics.db import instrument_engine
from statsd_metrics.flask import StatsdMetrics
from statsd_metrics.http_client import instrument_session
from statsd_metrics.privacy import UserHasher
from statsd_metrics.process import ProcessCollector
from statsd_metrics.security import SecurityMetrics

HOST = "127.0.0.1"
BANNER = "demo: app "
PARTNER_QUOTA = 20  # partner API calls per 10 s window before it answers 429
PAUSE = 0.05  # seconds between two simulated requests: about 20 requests a second


class Partner:
    """The external API the app syncs from: slow at times, rate-limited, sometimes failing."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.window = (0, 0)  # (10 s window, calls in it)
        self.app = Flask("partner")
        self.app.add_url_rule("/players/<int:team>", view_func=self.players)

    def players(self, team: int) -> tuple[dict, int, dict]:
        window = int(time.monotonic() // 10)
        calls = self.window[1] + 1 if self.window[0] == window else 1
        self.window = (window, calls)
        headers = {"X-RateLimit-Limit": str(PARTNER_QUOTA),
                   "X-RateLimit-Remaining": str(max(0, PARTNER_QUOTA - calls))}  # fmt: skip
        if calls > PARTNER_QUOTA:
            return {"error": "rate limited"}, 429, headers
        time.sleep(self.rng.uniform(0.005, 0.06))
        if self.rng.random() < 0.03:
            return {"error": "upstream"}, 503, headers
        return {"team": team, "players": self.rng.randint(1, 4)}, 200, headers


def create_app(client: Client, partner_url: str, rng: random.Random, database: Path) -> Flask:
    app = Flask("demo")
    # The faults are simulated on purpose: their tracebacks would bury the demo's own lines.
    app.logger.setLevel(logging.CRITICAL)
    StatsdMetrics(app, client=client)
    engine = sqlalchemy.create_engine(f"sqlite:///{database}")
    instrument_engine(engine, client, name="demo")
    with engine.begin() as db:
        db.exec_driver_sql("CREATE TABLE players (id INTEGER PRIMARY KEY, team INT, form INT)")
        db.exec_driver_sql("INSERT INTO players (team, form) VALUES " + ",".join(
            f"({n % 10}, {n % 8})" for n in range(200)))  # fmt: skip
    partner = instrument_session(requests.Session(), client, service="partner")
    business = BusinessMetrics(client, hasher=UserHasher(secrets.token_bytes(32)))  # per run
    security = SecurityMetrics(client)
    errors = {"burst": 0.0}  # share of views that fail, raised during an error burst
    app.extensions["demo_errors"] = errors
    app.extensions["demo_engine"] = engine

    def team() -> int:
        return int(request.args.get("team", "0")) % 10

    @app.get("/health")
    def health() -> str:
        return "ok"

    @app.post("/login")
    def login() -> tuple[str, int]:
        if request.form.get("password") != "right":
            security.login_failed()
            if rng.random() < 0.1:
                security.lockout()
            return "no", 401
        security.login_succeeded()
        business.user_active(request.form.get("user", "?"))
        return "ok", 200

    @app.get("/squad")
    def squad() -> dict:
        if rng.random() < errors["burst"]:
            raise RuntimeError("simulated fault in the squad view")
        business.feature_used("squad_view")
        with engine.connect() as db:
            rows = db.exec_driver_sql("SELECT id, form FROM players WHERE team = ?", (team(),))
            return {"players": [list(row) for row in rows]}

    @app.get("/training")
    def training() -> dict:
        business.feature_used("training_view")
        business.event("training_recommendations_made")
        if rng.random() < 0.4:
            business.event("training_recommendations_accepted")
        return {"drill": rng.choice(["passing", "defending", "set pieces"])}

    @app.post("/sync")
    def sync() -> tuple[str, int]:
        business.feature_used("sync")
        try:
            answer = partner.get(f"{partner_url}/players/{team()}", timeout=5)
        except requests.RequestException:
            abort(502)
        if answer.status_code == 429:
            security.rate_limited("sync")
            return "partner rate limit", 429
        if not answer.ok:
            abort(502)
        changed = answer.json()["players"]
        with engine.begin() as db:
            db.exec_driver_sql("UPDATE players SET form = (form + 1) % 8 WHERE team = ?", (team(),))
        business.event("player_updates", changed)
        business.event("syncs_completed")
        return "synced", 200

    @app.post("/players/<int:player>")
    def edit(player: int) -> str:
        business.feature_used("player_edit")
        business.event("player_edits")
        with engine.begin() as db:
            db.exec_driver_sql("UPDATE players SET form = 7 WHERE id = ?", (player,))
        return "saved"

    return app


@contextmanager
def serving(app: Flask) -> Iterator[str]:
    """The app on a free loopback port in a thread, until the block ends."""
    server = make_server(HOST, 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)


def traffic(
    app_url: str, app: Flask, rng: random.Random, stop: threading.Event, *, end: float, users: int
) -> int:
    """Simulated managers until `end` or `stop`; returns how many requests were sent."""
    http = requests.Session()
    sent = 0
    while not stop.wait(PAUSE) and time.monotonic() < end:
        # An error burst of about 20 s in every 5 minutes, so the error panels have a story.
        app.extensions["demo_errors"]["burst"] = 0.5 if time.time() % 300 < 20 else 0.0
        user = f"manager{rng.randrange(users)}"
        team = {"team": rng.randrange(10)}
        roll = rng.random()
        try:
            if roll < 0.08:
                password = "right" if rng.random() < 0.85 else "wrong"
                http.post(f"{app_url}/login", data={"user": user, "password": password}, timeout=10)
            elif roll < 0.5:
                http.get(f"{app_url}/squad", params=team, timeout=10)
            elif roll < 0.75:
                http.get(f"{app_url}/training", params=team, timeout=10)
            elif roll < 0.9:
                http.post(f"{app_url}/sync", params=team, timeout=10)
            elif roll < 0.97:
                http.post(f"{app_url}/players/{rng.randrange(1, 200)}", timeout=10)
            else:
                http.get(f"{app_url}/no-such-page", timeout=10)
        except requests.RequestException:
            pass  # the app is going away: the loop ends with `stop`
        sent += 1
    http.close()
    return sent


def run(args: argparse.Namespace, stop: threading.Event) -> int:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    rng = random.Random(args.seed)
    client = Client(host=args.statsd_host, port=args.statsd_port, prefix=args.prefix)
    with ExitStack() as stack:
        stack.callback(client.close)
        partner_url = stack.enter_context(serving(Partner(rng).app))
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="statsd-demo-")))
        app = create_app(client, partner_url, rng, workdir / "demo.db")
        # Its pool reports connections returned: close it while the client still sends.
        stack.callback(app.extensions["demo_engine"].dispose)
        app_url = stack.enter_context(serving(app))
        collector = ProcessCollector(client, interval=args.process_interval).start()
        stack.callback(collector.stop)
        print(f"{BANNER}{app_url}, partner API {partner_url}, metrics to "
              f"{args.statsd_host}:{args.statsd_port} as {args.prefix}.*", flush=True)  # fmt: skip
        sent = traffic(
            app_url, app, rng, stop, end=time.monotonic() + args.duration, users=args.users
        )
        print(f"demo: {sent} requests sent; stopping", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--statsd-host", default=HOST)
    parser.add_argument("--statsd-port", type=int, default=8125)
    parser.add_argument("--prefix", default="teamapp")
    parser.add_argument("--duration", type=float, default=3600.0, help="seconds, in all")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--process-interval", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return run(args, stop)


if __name__ == "__main__":
    raise SystemExit(main())
