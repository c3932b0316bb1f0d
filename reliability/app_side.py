"""The application side: a Flask app's latency and error rate with its aggregator healthy, down,
hung, unresolvable, or behind a DNS that does not answer, all in the same run.

Five gunicorn servers (1 gthread worker, 4 threads each) run the same small Flask app with the
StatsdMetrics extension and its own buffered UDP client (the default transport), each pointed
at one condition:

  healthy       a real aggregator (flushing to a fake Carbon)
  down          a port where nothing listens (the kernel answers "port unreachable")
  hung          a real aggregator stopped with SIGSTOP: its socket fills, then drops silently
  unresolvable  statsd.invalid (RFC 6761: never resolves; the answer comes at once)
  dns-silent    a name whose lookup hangs 5 s then fails, each time (a DNS server that is down)

wrk (Debian's `wrk`, 1 thread, 8 connections) loads one server at a time for `--seconds`, in
rounds that rotate the order, so every condition sees the same machine over time. Reported per
condition: the medians over rounds of requests/s and of wrk's 50th and 99th latency
percentiles, the ratio of each to `healthy` in the same run, the requests that failed (non-2xx
or socket errors), the time from starting gunicorn to its first answer, the drops the client
counted (by reason, from the app's /client route) and any traceback in gunicorn's log.

    .venv/bin/python reliability/app_side.py [--rounds 5] [--seconds 3]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from flask import Flask, jsonify

from statsd_metrics import Client
from statsd_metrics.flask import StatsdMetrics
from statsd_metrics.supervisor import terminate

ROOT = Path(__file__).resolve().parents[1]
CONDITIONS = ("healthy", "down", "hung", "unresolvable", "dns-silent")
LUA = ROOT / "benchmarks" / "flask_overhead.lua"  # GET /items/<n>, n varying


def silent_dns(host, port, family=0, kind=0, *args):
    """A DNS server that does not answer: 5 s, then a failure (glibc's default timeout)."""
    time.sleep(5)
    raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")


def create_app(condition: str) -> Flask:
    """The app under test (gunicorn 'reliability.app_side:create_app("down")'); its client
    sends to $APP_SIDE_HOST:$APP_SIDE_PORT."""
    options = {"resolver": silent_dns} if condition == "dns-silent" else {}
    client = Client(os.environ["APP_SIDE_HOST"], int(os.environ["APP_SIDE_PORT"]),
                    prefix="teamapp", **options)  # fmt: skip
    app = Flask("teamapp")

    @app.get("/items/<int:item_id>")
    def item(item_id: int):
        return jsonify(id=item_id, name=f"player {item_id}", skills=[3, 5, 8])

    @app.get("/client")
    def client_stats():
        return jsonify(client.stats())

    StatsdMetrics(app, client=client)
    return app


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One gunicorn for one condition; its first answer timed from its start."""

    def __init__(self, condition: str, host: str, port: int, workdir: Path) -> None:
        self.condition = condition
        self.port = free_port()
        self.log = workdir / f"gunicorn-{condition}.log"
        env = {**os.environ, "APP_SIDE_HOST": host, "APP_SIDE_PORT": str(port),
               "PYTHONPATH": str(ROOT)}  # fmt: skip
        began = time.monotonic()
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn",
                 f"reliability.app_side:create_app({condition!r})",
                 "--bind", f"127.0.0.1:{self.port}", "--workers", "1", "--worker-class",
                 "gthread", "--threads", "4", "--no-control-socket", "--chdir", str(ROOT)],
                env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = began + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/items/1", timeout=30)
                break
            except OSError as exc:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{condition}: no answer; see {self.log}") from exc
                time.sleep(0.05)
        self.first_answer = time.monotonic() - began

    def client_stats(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/client", timeout=30) as r:
            return r.read().decode()

    def stop(self) -> None:
        terminate(self.process, 30)


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(port: int, seconds: float) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t1", "-c8", f"-d{seconds:g}s", "--latency", "-s", str(LUA),
         f"http://127.0.0.1:{port}/"],
        capture_output=True, text=True, check=True, timeout=seconds + 60,
    ).stdout  # fmt: skip
    requests = int(re.search(r"(\d+) requests in", out)[1])
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    return {
        "rate": float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1]),
        "p50": _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M)[1]),
        "p99": _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M)[1]),
        "requests": requests,
        "errors": (int(non_2xx[1]) if non_2xx else 0)
        + (sum(map(int, socket_errors.groups())) if socket_errors else 0),
    }


def main() -> None:
    from harness import Aggregator, Carbon, conditions  # beside this script, not a package

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--seconds", type=float, default=3.0)
    args = p.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: run ./scripts/system-deps (Debian package wrk)")
    print(f"conditions at the start: {conditions()}", flush=True)
    results: dict[str, list[dict]] = {c: [] for c in CONDITIONS}
    with tempfile.TemporaryDirectory(prefix="app-side-") as tmp:
        workdir = Path(tmp)
        carbon = Carbon()
        healthy = Aggregator(carbon, {"flush_interval": 1}, workdir)
        hung = Aggregator(carbon, {"flush_interval": 1}, workdir)
        targets = {
            "healthy": ("127.0.0.1", healthy.port),
            "down": ("127.0.0.1", free_port(socket.SOCK_DGRAM)),
            "hung": ("127.0.0.1", hung.port),
            "unresolvable": ("statsd.invalid", 8125),
            "dns-silent": ("statsd.internal", 8125),
        }
        servers: dict[str, Server] = {}
        pid = hung.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        stopped = [pid, *map(int, children)]  # the hung aggregator's flusher and receivers
        try:
            for pid in stopped:
                os.kill(pid, signal.SIGSTOP)
            for condition, (host, port) in targets.items():
                servers[condition] = Server(condition, host, port, workdir)
            for server in servers.values():  # warm-up
                wrk(server.port, 1)
            for n in range(args.rounds):
                order = CONDITIONS[n % len(CONDITIONS) :] + CONDITIONS[: n % len(CONDITIONS)]
                for condition in order:
                    results[condition].append(wrk(servers[condition].port, args.seconds))
                print(f"round {n + 1}/{args.rounds} done", flush=True)
            drops = {c: s.client_stats() for c, s in servers.items()}
        finally:
            for server in servers.values():
                server.stop()
            for pid in stopped:
                os.kill(pid, signal.SIGCONT)
            healthy.stop()
            hung.stop()
            carbon.stop()
        tracebacks = {c: "Traceback" in s.log.read_text() for c, s in servers.items()}
    print(f"conditions at the end: {conditions()}\n")
    base = {k: statistics.median(r[k] for r in results["healthy"]) for k in ("rate", "p50", "p99")}
    print(
        f"{args.rounds} rounds of {args.seconds:g} s per condition, one server at a time; medians"
    )
    for condition in CONDITIONS:
        rounds = results[condition]
        med = {k: statistics.median(r[k] for r in rounds) for k in ("rate", "p50", "p99")}
        errors = sum(r["errors"] for r in rounds)
        total = sum(r["requests"] for r in rounds)
        print(
            f"  {condition:12} {med['rate']:7.0f} req/s ({med['rate'] / base['rate']:.2f}x), "
            f"p50 {med['p50']:6.2f} ms ({med['p50'] / base['p50']:.2f}x), p99 {med['p99']:6.2f} ms "
            f"({med['p99'] / base['p99']:.2f}x); failed {errors}/{total}; first answer "
            f"{servers[condition].first_answer:.2f} s after start; traceback in log: "
            f"{tracebacks[condition]}"
        )
        per_round = ", ".join(f"{r['rate']:.0f}" for r in rounds)
        print(f"  {'':12} req/s by round: {per_round}; client: {drops[condition].strip()}")


if __name__ == "__main__":
    main()
