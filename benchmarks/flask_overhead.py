"""What the Flask extension costs a real server: throughput with and without it, same run.

A minimal Flask app runs under gunicorn twice, side by side on loopback: once plain, once with
`StatsdMetrics` sending to a UDP sink in this process. wrk (Debian's `wrk`) loads them in
alternating rounds (plain, metrics, plain, metrics, ...), so both sides see the same machine
noise; the medians of the rounds are compared. Target: a throughput loss of at most 5 %.

    python benchmarks/flask_overhead.py [--rounds 5] [--seconds 5] [--connections 8]

The gunicorn app itself: `gunicorn 'benchmarks.flask_overhead:create_app(metrics=True)'`.
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
import threading
import time
from pathlib import Path

from flask import Flask, jsonify

ROOT = Path(__file__).resolve().parents[1]


def create_app(metrics: bool = False) -> Flask:
    """The app under test: one JSON route keyed by an id, and a health check."""
    app = Flask("bench")

    @app.get("/items/<int:item_id>")
    def item(item_id: int):
        return jsonify(id=item_id, name=f"item {item_id}", tags=["a", "b"])

    @app.get("/health")
    def health():
        return "ok"

    if metrics:
        from statsd_metrics.flask import StatsdMetrics

        app.config.update(
            STATSD_HOST="127.0.0.1",
            STATSD_PORT=int(os.environ["BENCH_STATSD_PORT"]),
            STATSD_PREFIX="bench",
        )
        StatsdMetrics(app)
    return app


class UdpSink:
    """Receives (and counts) what the instrumented server sends."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.datagrams = self.lines = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65535)
            except TimeoutError:
                continue
            self.datagrams += 1
            self.lines += data.count(b"\n") + 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(metrics: bool, port: int, sink_port: int, worker: str) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "gunicorn",
        f"benchmarks.flask_overhead:create_app(metrics={metrics})",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "1",
        "--worker-class",
        worker,
        "--threads",
        "4",
        "--log-level",
        "warning",
        "--chdir",
        str(ROOT),
    ]
    env = {**os.environ, "BENCH_STATSD_PORT": str(sink_port), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError("gunicorn exited before serving") from None
            time.sleep(0.1)
    stop(proc)
    raise RuntimeError("gunicorn did not start within 30 s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wrk(port: int, seconds: float, connections: int) -> float:
    """Requests per second of one wrk round (ids vary so the route, not the URL, is keyed)."""
    script = ROOT / "benchmarks" / "flask_overhead.lua"
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}/",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 30,
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not match or re.search(r"Non-2xx or 3xx responses", out):
        raise RuntimeError(f"wrk round failed:\n{out}")
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--worker", default="gthread", help="gunicorn worker class")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: run ./scripts/system-deps (Debian package wrk)")

    sink = UdpSink()
    plain_port, metrics_port = free_port(), free_port()
    servers = [
        start_gunicorn(False, plain_port, sink.port, args.worker),
        start_gunicorn(True, metrics_port, sink.port, args.worker),
    ]
    results: dict[str, list[float]] = {"plain": [], "metrics": []}
    try:
        for port in (plain_port, metrics_port):  # warm-up: imports, first requests
            wrk(port, 1, args.connections)
        for _ in range(args.rounds):
            results["plain"].append(wrk(plain_port, args.seconds, args.connections))
            results["metrics"].append(wrk(metrics_port, args.seconds, args.connections))
    finally:
        for proc in servers:
            stop(proc)
        time.sleep(0.3)  # let the last datagrams arrive
        sink.close()

    plain = statistics.median(results["plain"])
    metered = statistics.median(results["metrics"])
    loss = (plain - metered) / plain * 100
    print(
        f"gunicorn 1 worker ({args.worker}, 4 threads), wrk 1 thread {args.connections} "
        f"connections, {args.rounds} alternating rounds of {args.seconds:g} s"
    )
    print(
        f"  without extension: {plain:9.0f} req/s  (rounds: "
        f"{', '.join(f'{r:.0f}' for r in results['plain'])})"
    )
    print(
        f"  with extension:    {metered:9.0f} req/s  (rounds: "
        f"{', '.join(f'{r:.0f}' for r in results['metrics'])})"
    )
    print(
        f"  throughput loss:   {loss:9.1f} %   (target <= 5 %: {'met' if loss <= 5 else 'MISSED'})"
    )
    print(f"  metrics received:  {sink.lines} lines in {sink.datagrams} datagrams")


if __name__ == "__main__":
    main()
