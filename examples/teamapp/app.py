"""The team-manager web application, instrumented with every part of statsd_metrics.

`create_app(config)` builds it; `python -m examples.teamapp.app --port 0 --chpp-url URL` serves
it on loopback and prints `READY <url>`. Demo managers are seeded as `manager<N>` with the
password `pass-<N>` (every seventh one has opted out of usage analytics).
"""

from __future__ import annotations

import argparse
import functools
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask, abort, flash, g, redirect, render_template, request, session, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import BaseConverter
from werkzeug.security import check_password_hash, generate_password_hash

from examples.teamapp.chpp import ChppClient, ChppRateLimited, ChppUnavailable, endpoint_name
from examples.teamapp.lockout import Lockout
from examples.teamapp.models import (
    SKILLS,
    SYNCED_FIELDS,
    Player,
    Recommendation,
    User,
    init_db,
    make_engine,
    utcnow,
)
from examples.teamapp.ratelimit import RateLimiter
from examples.teamapp.serving import serve_forever
from examples.teamapp.training import recommend
from statsd_metrics.business import BusinessMetrics
from statsd_metrics.db import instrument_engine
from statsd_metrics.flask import StatsdMetrics
from statsd_metrics.http_client import instrument_session
from statsd_metrics.privacy import UserHasher
from statsd_metrics.process import ProcessCollector
from statsd_metrics.security import SecurityMetrics

POSITIONS = ("", "keeper", "defender", "wingback", "midfielder", "winger", "forward")
DEFAULTS: dict[str, Any] = {
    "DATABASE_URL": "sqlite://",
    "CHPP_URL": "http://127.0.0.1:9",
    "CHPP_CONSUMER_KEY": "teamapp-demo",
    "CHPP_RETRIES": 2,
    "DEMO_USERS": 20,
    "DEMO_USER_ID_BASE": 0,  # tests pick distinctive ids, to look for them on the wire
    # Cheap hashing for seeded demo accounts only; a real deployment keeps werkzeug's default.
    "PASSWORD_HASH_METHOD": "pbkdf2:sha256:10000",
    "LOCKOUT_ATTEMPTS": 5,
    "LOCKOUT_SECONDS": 900,
    "RATE_LIMITS": {"login": (30, 60.0), "sync": (1, 3.0)},
    "STATSD_PREFIX": "teamapp",
    # How many reverse proxies stand in front of the app and append to X-Forwarded-For: the
    # client address is taken that many hops from the right. 0 (the default) trusts no
    # header: a client sets X-Forwarded-For to whatever it likes, so a rate limit keyed by it
    # would be one it escapes at will. `TRUST_PROXY = True` is read as 1, for older configs.
    "TRUSTED_PROXIES": 0,
    # The login and the player page (a manager's notes, typed and shown) carry credentials
    # and personal text: no size of theirs is sent. Other sizes go as power-of-two buckets.
    "STATSD_METRICS_SIZE_EXCLUDE_ENDPOINTS": ("login", "player"),
}
MAX_ID = 2**63 - 1  # SQLite's largest integer: a bigger id is no id of ours


class IdConverter(BaseConverter):
    """`<id:name>`: a run of digits; one that cannot be an id becomes None, for the view to
    answer 404 and count (`security.invalid_ids`), instead of reaching the database."""

    regex = r"\d+"

    def to_python(self, value: str) -> int | None:
        number = int(value) if value.isascii() and len(value) <= 19 else MAX_ID + 1
        return number if number <= MAX_ID else None

    def to_url(self, value: object) -> str:
        return str(int(value))  # type: ignore[call-overload]


def trusted_proxies(config: dict[str, Any]) -> int:
    hops = config.get("TRUSTED_PROXIES") or int(config.get("TRUST_PROXY") or 0)
    if isinstance(hops, bool) or not isinstance(hops, int) or hops < 0:
        raise ValueError(f"TRUSTED_PROXIES must be a number of proxies (0 or more), not {hops!r}")
    return hops


@dataclass
class Teamapp:
    """What the views share: storage, the game API and the app's own metrics."""

    sessions: sessionmaker
    chpp: ChppClient
    limiter: RateLimiter
    lockout: Lockout
    business: BusinessMetrics
    security: SecurityMetrics


def demo_user(n: int) -> dict[str, Any]:
    return {
        "username": f"manager{n}",
        "password": f"pass-{n}",
        "email": f"manager{n}@example.org",
        "team_id": 1000 + n,
        "opted_out": n % 7 == 0,
    }


def seed_users(db: Session, count: int, method: str, id_base: int = 0) -> None:
    for n in range(1, count + 1):
        u = demo_user(n)
        db.add(
            User(
                id=id_base + n,
                username=u["username"],
                email=u["email"],
                team_id=u["team_id"],
                password_hash=generate_password_hash(u["password"], method=method),
                opted_out=u["opted_out"],
            )
        )
    db.commit()


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(DEFAULTS)
    app.config["SECRET_KEY"] = secrets.token_hex(16)
    app.config.update(config or {})
    app.url_map.converters["id"] = IdConverter
    proxies = trusted_proxies(app.config)
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies)  # type: ignore[method-assign]

    metrics = StatsdMetrics(app)
    engine = make_engine(app.config["DATABASE_URL"])
    instrument_engine(engine, metrics.client, name="teamapp")
    sessions = init_db(engine)
    with sessions() as db:
        if db.scalar(select(User.id).limit(1)) is None:
            seed_users(db, app.config["DEMO_USERS"], app.config["PASSWORD_HASH_METHOD"],
                       app.config["DEMO_USER_ID_BASE"])  # fmt: skip
    chpp = ChppClient(
        app.config["CHPP_URL"], app.config["CHPP_CONSUMER_KEY"], retries=app.config["CHPP_RETRIES"]
    )
    instrument_session(chpp.session, metrics.client, service="chpp", endpoint=endpoint_name)
    ctx = Teamapp(
        sessions=sessions,
        chpp=chpp,
        limiter=RateLimiter(app.config["RATE_LIMITS"]),
        lockout=Lockout(app.config["LOCKOUT_ATTEMPTS"], app.config["LOCKOUT_SECONDS"]),
        business=BusinessMetrics(metrics.client, hasher=UserHasher.from_config(app.config)),
        security=SecurityMetrics(metrics.client),
    )
    app.extensions["teamapp"] = ctx
    register_views(app, ctx)

    @app.before_request
    def count_untrusted_forwarding() -> None:
        # More hops than trusted proxies: the client wrote some of them (ProxyFix used only
        # the trusted ones, from the right).
        header = request.headers.get("X-Forwarded-For")
        if header and len(header.split(",")) > proxies:
            ctx.security.proxy_headers_ignored()

    return app


def register_views(app: Flask, ctx: Teamapp) -> None:
    def db() -> Session:
        if "db" not in g:
            g.db = ctx.sessions()
        return g.db

    @app.teardown_appcontext
    def close_db(exc: BaseException | None) -> None:
        session_ = g.pop("db", None)
        if session_ is not None:
            session_.close()

    def login_required(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(**kwargs: Any):
            user = db().get(User, session.get("user_id", 0))
            if user is None:
                return redirect(url_for("login"))
            g.user = user
            ctx.business.user_active(user.id, opted_out=user.opted_out)
            return view(**kwargs)

        return wrapper

    @app.get("/health")
    def health():
        return "ok"

    @app.get("/")
    def index():
        return redirect(url_for("squad" if "user_id" in session else "login"))

    @app.route("/login", methods=["GET", "POST"])
    def login():
        if request.method == "GET":
            return render_template("login.html")
        # The address keys the limiter in memory only; no metric ever carries it.
        address = request.remote_addr or "-"
        if not ctx.limiter.hit("login", address):
            ctx.security.rate_limited("login")
            return render_template("login.html", error="Too many attempts, wait a minute."), 429
        user = db().scalar(select(User).where(User.username == request.form.get("username", "")))
        # Locked for this address only (lockout.py): no one can lock a manager out.
        if user is not None and ctx.lockout.locked(user.id, address):
            ctx.security.login_blocked()
            return render_template("login.html", error="Too many failures, try later."), 403
        if user is None or not check_password_hash(
            user.password_hash, request.form.get("password", "")
        ):
            ctx.security.login_failed()
            if user is not None and ctx.lockout.failed(user.id, address):
                ctx.security.lockout()
            return render_template("login.html", error="Wrong user name or password."), 401
        ctx.lockout.succeeded(user.id, address)
        session.clear()
        session["user_id"] = user.id
        ctx.security.login_succeeded()
        return redirect(url_for("squad"))

    @app.post("/logout")
    def logout():
        session.clear()
        return redirect(url_for("login"))

    def team_players() -> list[Player]:
        query = select(Player).where(Player.team_id == g.user.team_id).order_by(Player.id)
        return list(db().scalars(query))

    @app.get("/squad")
    @login_required
    def squad():
        ctx.business.feature_used("squad_view")
        return render_template(
            "squad.html", players=team_players(), skills=SKILLS, team_id=g.user.team_id
        )

    @app.post("/sync")
    @login_required
    def sync():
        if not ctx.limiter.hit("sync", str(g.user.id)):
            ctx.security.rate_limited("sync")
            return "One sync every few seconds, please.", 429
        ctx.business.feature_used("sync")
        try:
            remote = ctx.chpp.players(g.user.team_id)
        except ChppRateLimited as exc:
            flash(str(exc))
            return "The game API is busy: " + str(exc), 503, {"Retry-After": str(exc.retry_after)}
        except ChppUnavailable as exc:
            return f"The game API is unavailable ({exc}).", 502
        changed = store_players(db(), g.user.team_id, remote)
        ctx.business.event("syncs_completed")
        ctx.business.event("player_updates", changed)
        flash(f"Synced {len(remote)} players, {changed} updated.")
        return redirect(url_for("squad"))

    def invalid_id() -> None:
        ctx.security.invalid_id()
        abort(404)

    @app.route("/players/<id:player_id>", methods=["GET", "POST"])
    @login_required
    def player(player_id: int | None):
        if player_id is None:
            invalid_id()
        p = db().get(Player, player_id)
        if p is None or p.team_id != g.user.team_id:
            abort(404)
        if request.method == "POST":
            position = request.form.get("position", "")
            notes = request.form.get("notes", "")
            if position not in POSITIONS or len(notes) > 2000:
                abort(400)
            p.position, p.notes = position or None, notes
            db().commit()
            ctx.business.feature_used("player_edit")
            ctx.business.event("player_edits")
            return redirect(url_for("player", player_id=player_id))
        ctx.business.feature_used("player_view")
        return render_template("player.html", player=p, skills=SKILLS, positions=POSITIONS)

    @app.get("/training")
    @login_required
    def training():
        ctx.business.feature_used("training_view")
        players = team_players()
        advice = recommend(players)
        rec = db().scalar(
            select(Recommendation)
            .where(Recommendation.team_id == g.user.team_id)
            .order_by(Recommendation.id.desc())
            .limit(1)
        )
        if advice is not None and (rec is None or rec.training != advice.training):
            rec = Recommendation(
                team_id=g.user.team_id,
                user_id=g.user.id,
                training=advice.training,
                reason=advice.reason,
            )
            db().add(rec)
            db().commit()
            ctx.business.event("training_recommendations_made")
        trainees = [p for p in players if advice and p.id in advice.trainees]
        return render_template("training.html", rec=rec, trainees=trainees)

    @app.post("/training/<id:rec_id>/accept")
    @login_required
    def accept_training(rec_id: int | None):
        if rec_id is None:
            invalid_id()
        rec = db().get(Recommendation, rec_id)
        if rec is None or rec.team_id != g.user.team_id:
            abort(404)
        if rec.accepted_at is None:
            rec.accepted_at = utcnow()
            db().commit()
            ctx.business.event("training_recommendations_accepted")
        return redirect(url_for("training"))


def store_players(db: Session, team_id: int, remote: list[dict[str, Any]]) -> int:
    """Apply CHPP's view of the squad; returns how many players were added or changed."""
    changed = 0
    local = {p.id: p for p in db.scalars(select(Player).where(Player.team_id == team_id))}
    for data in remote:
        player = local.pop(data["player_id"], None)
        if player is None:
            player = Player(id=data["player_id"], team_id=team_id, notes="")
            db.add(player)
        elif all(getattr(player, f) == data[f] for f in SYNCED_FIELDS):
            continue
        for f in SYNCED_FIELDS:
            setattr(player, f, data[f])
        player.updated_at = utcnow()
        changed += 1
    for gone in local.values():  # sold or released since the last sync
        db.delete(gone)
    db.commit()
    return changed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the team-manager example on loopback.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--chpp-url", required=True)
    parser.add_argument("--statsd-host", default="127.0.0.1")
    parser.add_argument("--statsd-port", type=int, default=8125)
    parser.add_argument("--prefix", default=DEFAULTS["STATSD_PREFIX"])
    parser.add_argument("--database", default="sqlite://", help="SQLAlchemy URL")
    parser.add_argument("--users", type=int, default=DEFAULTS["DEMO_USERS"])
    parser.add_argument("--lockout-seconds", type=float, default=DEFAULTS["LOCKOUT_SECONDS"])
    parser.add_argument("--process-interval", type=float, default=10.0)
    parser.add_argument(
        "--trusted-proxies", type=int, default=0, help="reverse proxies in front (X-Forwarded-For)"
    )
    args = parser.parse_args(argv)
    app = create_app(
        {
            "CHPP_URL": args.chpp_url,
            "DATABASE_URL": args.database,
            "DEMO_USERS": args.users,
            "STATSD_HOST": args.statsd_host,
            "STATSD_PORT": args.statsd_port,
            "STATSD_PREFIX": args.prefix,
            "LOCKOUT_SECONDS": args.lockout_seconds,
            "TRUSTED_PROXIES": args.trusted_proxies,
            # From the environment in a real deployment; a fresh one per run is right for a demo.
            "STATSD_METRICS_USER_HASH_SECRET": os.environ.get("TEAMAPP_USER_HASH_SECRET")
            or secrets.token_hex(32),
        }
    )
    collector = ProcessCollector(
        app.extensions["statsd_metrics"].client, interval=args.process_interval
    )
    collector.start()
    try:
        serve_forever(app, args.port)
    finally:
        collector.stop()


if __name__ == "__main__":
    main()
