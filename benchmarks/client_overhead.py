"""Per-call cost of statsd_metrics.Client against statsd.StatsClient, in the same run.

Both send to the same local UDP sink (a child process that reads and discards). Every round
times every case back to back, so a ratio computed within a round compares runs that met the
same noise; the figure reported is the median of those per-round ratios. Buffered cases include
their final flush, so the background sending is paid for inside the measurement.

Targets (issue 2): buffered incr and timing <= 1/4 of statsd's incr; the @timed wrapper's
overhead <= 1/3 of statsd's @timer overhead (for a client's decorator and for the module-level
one); unbuffered incr <= 1.1 x statsd's incr.

    .venv/bin/python benchmarks/client_overhead.py [--calls N] [--rounds R]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import statsd

import statsd_metrics

SINK = """
import socket
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
sock.bind(("127.0.0.1", 0))
print(sock.getsockname()[1], flush=True)
while True:
    sock.recv(65535)
"""


def loop(call: Callable[[], object], after: Callable[[], object] = lambda: None) -> Callable:
    def run(calls: int) -> float:
        start = time.perf_counter()
        for _ in range(calls):
            call()
        after()
        return (time.perf_counter() - start) / calls * 1e9

    return run


def measure(port: int, calls: int, rounds: int) -> tuple[dict[str, list[float]], int]:
    """Nanoseconds per call of each case, one sample per round; and the drops seen."""
    peer = statsd.StatsClient("127.0.0.1", port)
    buffered = statsd_metrics.Client("127.0.0.1", port)
    unbuffered = statsd_metrics.Client("127.0.0.1", port, buffered=False)
    default = statsd_metrics.configure(host="127.0.0.1", port=port)

    def bare() -> None:
        pass

    cases = {
        "statsd incr": loop(lambda: peer.incr("bench.requests")),
        "buffered incr": loop(lambda: buffered.incr("bench.requests"), buffered.flush),
        "buffered timing": loop(lambda: buffered.timing("bench.latency", 12.5), buffered.flush),
        "unbuffered incr": loop(lambda: unbuffered.incr("bench.requests")),
        "bare call": loop(bare),
        "statsd @timer call": loop(peer.timer("bench.handler")(bare)),
        "@timed call": loop(buffered.timed("bench.handler")(bare), buffered.flush),
        "module @timed call": loop(statsd_metrics.timed("bench.handler")(bare), default.flush),
    }
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, run in cases.items():
            samples[name].append(run(calls))
    dropped = 0
    for client in (buffered, unbuffered, default):
        dropped += client.stats()["dropped_total"]  # type: ignore[operator]
        client.close()
    peer.close()
    return samples, dropped


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=25)
    args = parser.parse_args()
    calls, rounds = min(args.calls, 200_000), min(args.rounds, 100)

    sink = subprocess.Popen([sys.executable, "-c", SINK], stdout=subprocess.PIPE, text=True)
    try:
        samples, dropped = measure(int(sink.stdout.readline()), calls, rounds)  # type: ignore[union-attr]
    finally:
        sink.kill()
        sink.wait()

    per_round = [
        dict(zip(samples, values, strict=True)) for values in zip(*samples.values(), strict=True)
    ]

    def overhead(ns: dict[str, float], case: str) -> float:
        return ns[case] - ns["bare call"]

    checks = {
        "buffered incr / statsd incr": (lambda ns: ns["buffered incr"] / ns["statsd incr"], 1 / 4),
        "buffered timing / statsd incr": (
            lambda ns: ns["buffered timing"] / ns["statsd incr"],
            1 / 4,
        ),
        "@timed overhead / statsd @timer's": (
            lambda ns: overhead(ns, "@timed call") / overhead(ns, "statsd @timer call"),
            1 / 3,
        ),
        "module @timed overhead / statsd @timer's": (
            lambda ns: overhead(ns, "module @timed call") / overhead(ns, "statsd @timer call"),
            1 / 3,
        ),
        "unbuffered incr / statsd incr": (
            lambda ns: ns["unbuffered incr"] / ns["statsd incr"],
            1.1,
        ),
    }
    print(f"ns per call, median of {rounds} rounds of {calls} calls:")
    for name, values in samples.items():
        print(f"  {name:<22} {statistics.median(values):8.0f}")
    print("ratios, median of the per-round ratios (target):")
    for name, (ratio, target) in checks.items():
        value = statistics.median(ratio(ns) for ns in per_round)
        print(
            f"  {name:<42} {value:6.3f}  (<= {target:.3f})  {'ok' if value <= target else 'MISSED'}"
        )
    print(f"metrics dropped by statsd_metrics during the run: {dropped}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
