"""What the Flask extension costs a real server: throughput with and without it, same run.

A minimal Flask app runs under gunicorn twice, side by side on loopback: once plain, once with
`StatsdMetrics` sending to a UDP sink in this process. wrk (Debian's `wrk`) loads them in
alternating rounds (plain, metrics, plain, metrics, ...), so both sides see the same machine
noise; the medians of the rounds are compared. Target: a throughput loss of at most 5 %.

Throughput on a shared 2-core machine swings by tens of percent from one round to the next.
So each round loads both servers at the same time (two wrk, one per server: whatever else runs
on the machine hits both alike) and the loss is the median of the per-round losses. The script
also reports the gunicorn worker's CPU time per request (user + system, all its threads, the
client's flusher included): while the worker is the bottleneck, the throughput loss is
1 - CPU(plain) / CPU(metrics).

With `--callgrind`, it also counts the instructions the gunicorn worker (under valgrind)
executes per request, plain and with the extension: the one figure here that does not depend
on the machine's load. It overstates the extension's share a little: valgrind slows time down
50-fold, and the client's background threads wake on a clock.

    python benchmarks/flask_overhead.py [--rounds 9] [--seconds 4] [--callgrind] [--aa]

`--aa` runs both servers without the extension: the "loss" it reports is this measurement's
noise on the machine at hand (on the 2-core VM where it was written: tens of percent either
way), which says how far the wall-clock figures can be trusted.

The app alone: `gunicorn 'benchmarks.flask_overhead:create_app(metrics=True)'`.
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
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
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


def start_gunicorn(
    metrics: bool, port: int, sink_port: int, worker: str, *,
    timeout: float = 30.0, wrapper: list[str] | None = None,
) -> subprocess.Popen:  # fmt: skip
    app = f"benchmarks.flask_overhead:create_app(metrics={metrics})"
    cmd = [*(wrapper or []), sys.executable, "-m", "gunicorn", app,
           "--bind", f"127.0.0.1:{port}", "--workers", "1", "--worker-class", worker,
           "--threads", "4", "--timeout", "300", "--log-level", "warning",
           "--chdir", str(ROOT)]  # fmt: skip
    env = {**os.environ, "BENCH_STATSD_PORT": str(sink_port), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError("gunicorn exited before serving") from None
            time.sleep(0.1)
    stop(proc)
    raise RuntimeError(f"gunicorn did not start within {timeout:g} s")


def stop(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """Stop the gunicorn master we started (by PID); it stops its worker."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def gunicorn_worker(master: subprocess.Popen, timeout: float) -> int:
    """The worker's PID (the master listens before it forks its worker)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = psutil.Process(master.pid).children()
        if children:
            return children[0].pid
        time.sleep(0.1)
    raise RuntimeError("gunicorn started no worker")


def worker_cpu(master: subprocess.Popen) -> float:
    """CPU seconds used so far by the gunicorn worker (the master only supervises)."""
    return sum(sum(child.cpu_times()[:2]) for child in psutil.Process(master.pid).children())


def wrk(port: int, seconds: float, connections: int) -> tuple[float, int]:
    """(requests per second, requests) of one wrk round; ids vary, the route stays one."""
    script = ROOT / "benchmarks" / "flask_overhead.lua"
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "-s", str(script),
           f"http://127.0.0.1:{port}/"]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True,
                         timeout=seconds + 30).stdout  # fmt: skip
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    count = re.search(r"(\d+) requests in", out)
    if not rate or not count or "Non-2xx or 3xx responses" in out:
        raise RuntimeError(f"wrk round failed:\n{out}")
    return float(rate.group(1)), int(count.group(1))


def callgrind_per_request(metrics: bool, sink_port: int, worker: str) -> float:
    """Instructions per request of the gunicorn worker under callgrind (100 vs 400)."""
    totals = []
    with tempfile.TemporaryDirectory(prefix="flask-overhead-") as tmp:
        for requests in (100, 400):
            port = free_port()
            out = f"{tmp}/callgrind.{requests}"
            valgrind = ["valgrind", "--tool=callgrind", "--trace-children=yes",
                        f"--callgrind-out-file={out}.%p"]  # fmt: skip
            proc = start_gunicorn(metrics, port, sink_port, worker, timeout=120.0, wrapper=valgrind)
            try:
                worker_pid = gunicorn_worker(proc, timeout=120.0)
                request = b"GET /items/%d HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
                for i in range(requests):
                    with socket.create_connection(("127.0.0.1", port), timeout=60) as conn:
                        conn.sendall(request % i)
                        while conn.recv(65536):
                            pass
            finally:
                stop(proc, grace=120)
            text = Path(f"{out}.{worker_pid}").read_text()
            totals.append(int(re.search(r"^(?:summary|totals): (\d+)", text, re.M).group(1)))
    return (totals[1] - totals[0]) / 300


def measured_round(
    server: subprocess.Popen, port: int, args: argparse.Namespace
) -> tuple[float, float]:
    """(requests per second, worker CPU microseconds per request) of one wrk round."""
    before = worker_cpu(server)
    rate, count = wrk(port, args.seconds, args.connections)
    return rate, (worker_cpu(server) - before) / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--worker", default="gthread", help="gunicorn worker class")
    parser.add_argument("--callgrind", action="store_true", help="also count instructions")
    parser.add_argument("--aa", action="store_true",
                        help="both servers without the extension: what the same measurement "
                             "reports for no difference at all (its noise)")  # fmt: skip
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: run ./scripts/system-deps (Debian package wrk)")

    sink = UdpSink()
    ports = {"plain": free_port(), "metrics": free_port()}
    servers = {side: start_gunicorn(side == "metrics" and not args.aa, port, sink.port, args.worker)
               for side, port in ports.items()}  # fmt: skip
    rates: dict[str, list[float]] = {side: [] for side in ports}
    cpus: dict[str, list[float]] = {side: [] for side in ports}
    try:
        for port in ports.values():  # warm-up: imports, first requests
            wrk(port, 1, args.connections)
        with ThreadPoolExecutor(2) as pool:
            for n in range(args.rounds):  # both sides at once: the same machine noise
                order = list(ports) if n % 2 == 0 else list(ports)[::-1]  # neither always first
                futures = {side: pool.submit(measured_round, servers[side], ports[side], args)
                           for side in order}  # fmt: skip
                for side, future in futures.items():
                    rate, cpu = future.result()
                    rates[side].append(rate)
                    cpus[side].append(cpu)
        instructions = None
        if args.callgrind:
            instructions = {side: callgrind_per_request(side == "metrics", sink.port, args.worker)
                            for side in ports}  # fmt: skip
    finally:
        for proc in servers.values():
            stop(proc)
        time.sleep(0.3)  # let the last datagrams arrive
        sink.close()

    rate = {side: statistics.median(values) for side, values in rates.items()}
    cpu = {side: statistics.median(values) for side, values in cpus.items()}
    # Losses per round (both sides ran at the same time), then their median.
    loss = statistics.median(
        (p - m) / p * 100 for p, m in zip(rates["plain"], rates["metrics"], strict=True)
    )
    cpu_loss = statistics.median(
        (1 - p / m) * 100 for p, m in zip(cpus["plain"], cpus["metrics"], strict=True)
    )
    print(f"gunicorn 1 worker ({args.worker}, 4 threads), wrk 1 thread {args.connections} "
          f"connections per server, {args.rounds} rounds of {args.seconds} s loading both "
          f"servers at once; medians")  # fmt: skip
    second = "without, again (--aa)" if args.aa else "with extension"
    for side, label in (("plain", "without extension"), ("metrics", second)):
        rounds = ", ".join(f"{r:.0f}" for r in rates[side])
        print(f"  {label:18s} {rate[side]:7.0f} req/s  {cpu[side]:5.0f} us CPU/request"
              f"  (req/s by round: {rounds})")  # fmt: skip

    def verdict(value: float) -> str:
        if args.aa:
            return "n/a, no extension on either side: this is the noise"
        return "met" if value <= 5 else "MISSED"

    print(f"  throughput loss:   {loss:7.1f} %  target <= 5 %: {verdict(loss)}"
          "  (median of the per-round losses; wall clock, the noisiest)")  # fmt: skip
    print(f"  CPU-bound loss:    {cpu_loss:7.1f} %  target <= 5 %: {verdict(cpu_loss)}"
          f"  (1 - CPU(plain)/CPU(metrics) per request, median;"
          f" {cpu['metrics'] - cpu['plain']:+.0f} us/request)")  # fmt: skip
    if instructions is not None:
        instruction_loss = (1 - instructions["plain"] / instructions["metrics"]) * 100
        plain, metered = instructions["plain"], instructions["metrics"]
        print(f"  instruction loss:  {instruction_loss:7.1f} %  target <= 5 %: "
              f"{verdict(instruction_loss)}  ({plain:,.0f} vs {metered:,.0f} instructions per "
              "request, the worker under callgrind: unmoved by the load)")  # fmt: skip
    print(f"  metrics received:  {sink.lines} lines in {sink.datagrams} datagrams")


if __name__ == "__main__":
    main()
