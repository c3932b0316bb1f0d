"""A local stand-in for the CHPP game API, with the behaviour that makes metrics interesting.

It answers `GET /chppxml.ashx?file=<file>&teamID=<id>` like the real API's JSON-ish cousin, and
behaves like a remote service under load:

* latency: log-normal around `latency_ms` (a long tail, as seen on real APIs), scaled to zero
  in tests;
* errors: a small base rate of 500/503 answers, and *bursts* on request (`POST /_sim/burst`)
  during which many calls fail and some answer 200 with a truncated body;
* a rate limit per consumer key (a fixed window): every answer carries `X-RateLimit-Limit`,
  `X-RateLimit-Remaining` and `X-RateLimit-Reset`, and over the limit the answer is 429 with
  `Retry-After`.

Players evolve between calls (form, stamina, injuries, now and then a skill-up), so syncing
really updates rows. All randomness comes from one seeded generator.

Run alone: `python -m examples.teamapp.chpp_sim --port 0` prints `READY http://127.0.0.1:<port>`.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import Flask, Response, abort, jsonify, request

from examples.teamapp.models import SKILLS
from examples.teamapp.serving import serve_forever

FIRST_NAMES = (
    "Ake",
    "Bruno",
    "Cesc",
    "Dario",
    "Emil",
    "Fredrik",
    "Goran",
    "Henrik",
    "Ivo",
    "Jonas",
    "Kalle",
    "Lasse",
    "Mats",
    "Niko",
    "Olle",
    "Pavel",
    "Rasmus",
    "Sven",
)
LAST_NAMES = (
    "Andersson",
    "Berg",
    "Costa",
    "Dahl",
    "Eriksen",
    "Falk",
    "Gomez",
    "Holm",
    "Ivanov",
    "Jansen",
    "Kovac",
    "Lind",
    "Moreau",
    "Nilsson",
    "Ortega",
    "Petrov",
    "Quist",
)
FILES = ("players", "teamdetails", "training")


@dataclass
class SimSettings:
    latency_ms: float = 60.0  # median answer time; 0 answers at once
    error_rate: float = 0.01  # share of 500/503 answers outside bursts
    rate_limit: int = 60  # calls per consumer key per window
    window_s: float = 10.0
    seed: int = 7


@dataclass
class _Burst:
    until: float = 0.0
    error_rate: float = 0.6


@dataclass
class _Team:
    id: int
    name: str
    players: list[dict] = field(default_factory=list)
    training: str = "playmaking"


class ChppSimulator:
    """The simulator's state: teams, rate-limit windows and error bursts, behind one lock."""

    def __init__(
        self, settings: SimSettings | None = None, clock: Callable[[], float] = time.monotonic
    ):
        self.settings = settings or SimSettings()
        self.clock = clock
        self.rng = random.Random(self.settings.seed)
        self.lock = threading.Lock()
        self.teams: dict[int, _Team] = {}
        self.windows: dict[str, tuple[float, int]] = {}  # consumer -> (window start, calls)
        self.burst = _Burst()

    # -- behaviour ----------------------------------------------------------------------------
    def take_quota(self, consumer: str) -> tuple[bool, int, float]:
        """Count one call: (allowed, remaining, seconds until the window resets)."""
        now = self.clock()
        with self.lock:
            start, calls = self.windows.get(consumer, (now, 0))
            if now - start >= self.settings.window_s:
                start, calls = now, 0
            allowed = calls < self.settings.rate_limit
            calls += allowed
            self.windows[consumer] = (start, calls)
        return allowed, self.settings.rate_limit - calls, start + self.settings.window_s - now

    def start_burst(self, seconds: float, error_rate: float) -> None:
        with self.lock:
            self.burst = _Burst(until=self.clock() + seconds, error_rate=error_rate)

    def failure(self) -> str | None:
        """None for a good answer, else "error" (500/503) or "truncated" (200, cut body)."""
        with self.lock:
            in_burst = self.clock() < self.burst.until
            rate = self.burst.error_rate if in_burst else self.settings.error_rate
            roll = self.rng.random()
        if roll >= rate:
            return None
        return "truncated" if in_burst and roll < rate / 4 else "error"

    def latency(self) -> float:
        if self.settings.latency_ms <= 0:
            return 0.0
        with self.lock:
            factor = self.rng.lognormvariate(0.0, 0.6)
        return min(self.settings.latency_ms * factor, 20 * self.settings.latency_ms) / 1000

    # -- data ---------------------------------------------------------------------------------
    def team(self, team_id: int) -> dict:
        with self.lock:
            team = self.teams.get(team_id)
            if team is None:
                team = self.teams[team_id] = self._new_team(team_id)
            else:
                self._evolve(team)
            return json.loads(json.dumps(team.__dict__))  # a snapshot, safe outside the lock

    def _new_team(self, team_id: int) -> _Team:
        rng = random.Random(team_id * 7919 + self.settings.seed)
        team = _Team(id=team_id, name=f"FC {rng.choice(LAST_NAMES)} {team_id % 100}")
        for n in range(rng.randint(16, 22)):
            talent = rng.choice(SKILLS)
            skills = {s: rng.randint(1, 6) for s in SKILLS}
            skills[talent] = rng.randint(6, 13)
            team.players.append(
                {
                    "player_id": team_id * 100 + n,
                    "first_name": rng.choice(FIRST_NAMES),
                    "last_name": rng.choice(LAST_NAMES),
                    "age": rng.randint(17, 33),
                    "tsi": rng.randint(500, 60000),
                    "form": rng.randint(2, 8),
                    "stamina": rng.randint(3, 8),
                    "injury_weeks": 0,
                    **skills,
                }
            )
        return team

    def _evolve(self, team: _Team) -> None:
        """Between two calls the game moves on a little."""
        for p in team.players:
            roll = self.rng.random()
            if roll < 0.15:
                p["form"] = max(1, min(8, p["form"] + self.rng.choice((-1, 1))))
            elif roll < 0.22:
                p["stamina"] = max(1, min(8, p["stamina"] + self.rng.choice((-1, 1))))
            elif roll < 0.24:
                p["injury_weeks"] = self.rng.randint(1, 4)
            elif roll < 0.27 and p["injury_weeks"]:
                p["injury_weeks"] -= 1
            elif roll < 0.29:
                skill = self.rng.choice(SKILLS)
                p[skill] = min(20, p[skill] + 1)
                p["tsi"] += self.rng.randint(100, 2000)


def create_sim_app(
    sim: ChppSimulator | None = None, sleep: Callable[[float], None] = time.sleep
) -> Flask:
    sim = sim or ChppSimulator()
    app = Flask("chpp_sim")
    app.extensions["chpp_sim"] = sim

    @app.get("/chppxml.ashx")
    def chpp():
        consumer = request.headers.get("X-CHPP-Consumer", "")
        if not consumer:
            abort(401)
        allowed, remaining, reset = sim.take_quota(consumer)
        headers = {
            "X-RateLimit-Limit": str(sim.settings.rate_limit),
            "X-RateLimit-Remaining": str(max(remaining, 0)),
            "X-RateLimit-Reset": str(math.ceil(reset)),
        }
        if not allowed:
            headers["Retry-After"] = str(math.ceil(reset))
            return Response(
                '{"error": "rate limit exceeded"}', 429, headers, mimetype="application/json"
            )
        sleep(sim.latency())
        failure = sim.failure()
        if failure == "error":
            code = sim.rng.choice((500, 503, 503))
            return Response('{"error": "unavailable"}', code, headers, mimetype="application/json")
        file = request.args.get("file", "")
        try:
            team_id = int(request.args.get("teamID", ""))
        except ValueError:
            abort(400)
        if file not in FILES:
            abort(404)
        team = sim.team(team_id)
        if file == "players":
            body = {"team_id": team_id, "players": team["players"]}
        elif file == "teamdetails":
            body = {"team_id": team_id, "name": team["name"], "players": len(team["players"])}
        else:
            body = {"team_id": team_id, "training": team["training"]}
        text = json.dumps(body)
        if failure == "truncated":
            text = text[: len(text) // 2]
        return Response(text, 200, headers, mimetype="application/json")

    @app.post("/_sim/burst")
    def burst():
        """Start an error burst: `seconds` long, failing `error_rate` of the calls."""
        seconds = float(request.args.get("seconds", "10"))
        error_rate = float(request.args.get("error_rate", "0.6"))
        sim.start_burst(seconds, error_rate)
        return jsonify(seconds=seconds, error_rate=error_rate)

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=SimSettings.latency_ms)
    parser.add_argument("--error-rate", type=float, default=SimSettings.error_rate)
    parser.add_argument("--rate-limit", type=int, default=SimSettings.rate_limit)
    parser.add_argument("--window", type=float, default=SimSettings.window_s)
    parser.add_argument("--seed", type=int, default=SimSettings.seed)
    args = parser.parse_args(argv)
    settings = SimSettings(
        args.latency_ms, args.error_rate, args.rate_limit, args.window, args.seed
    )
    serve_forever(create_sim_app(ChppSimulator(settings)), args.port)


if __name__ == "__main__":
    main()
