"""Per-call cost of statsd_metrics.Client against statsd.StatsClient, in the same run.

Both send to the same local UDP sink (a child process that reads and discards). Each case is
timed in alternation with its peer, several rounds, and the best round of each is kept (the
least disturbed by the other tenants of this machine); ratios are what to read. Buffered cases
include the final flush, so the background sending is paid for inside the measurement.

Targets (issue 2): buffered incr and timing <= 0.25 x statsd incr; @timed overhead <= 1/3 of
statsd's @timer overhead; unbuffered incr <= 1.1 x statsd incr.

    .venv/bin/python benchmarks/client_overhead.py [--calls N] [--rounds R]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable

import statsd

import statsd_metrics

SINK = """
import socket, sys
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
sock.bind(("127.0.0.1", 0))
print(sock.getsockname()[1], flush=True)
while True:
    sock.recv(65535)
"""


def per_call(run: Callable[[int], None], calls: int) -> float:
    start = time.perf_counter()
    run(calls)
    return (time.perf_counter() - start) / calls * 1e9


def best_of(cases: dict[str, Callable[[int], None]], calls: int, rounds: int) -> dict[str, float]:
    best = dict.fromkeys(cases, float("inf"))
    for _ in range(rounds):
        for name, run in cases.items():  # alternate, so that noise hits every case alike
            best[name] = min(best[name], per_call(run, calls))
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=25)
    args = parser.parse_args()
    calls, rounds = min(args.calls, 200_000), min(args.rounds, 100)

    sink = subprocess.Popen([sys.executable, "-c", SINK], stdout=subprocess.PIPE, text=True)
    try:
        port = int(sink.stdout.readline())  # type: ignore[union-attr]
        peer = statsd.StatsClient("127.0.0.1", port)
        buffered = statsd_metrics.Client("127.0.0.1", port)
        unbuffered = statsd_metrics.Client("127.0.0.1", port, buffered=False)
        default = statsd_metrics.configure(host="127.0.0.1", port=port)

        def peer_incr(n: int) -> None:
            for _ in range(n):
                peer.incr("bench.requests")

        def ours_incr(n: int) -> None:
            for _ in range(n):
                buffered.incr("bench.requests")
            buffered.flush()

        def ours_timing(n: int) -> None:
            for _ in range(n):
                buffered.timing("bench.latency", 12.5)
            buffered.flush()

        def ours_unbuffered(n: int) -> None:
            for _ in range(n):
                unbuffered.incr("bench.requests")

        def bare() -> None:
            pass

        peer_timed = peer.timer("bench.handler")(bare)
        ours_timed = buffered.timed("bench.handler")(bare)
        module_timed = statsd_metrics.timed("bench.handler")(bare)

        def call_bare(n: int) -> None:
            for _ in range(n):
                bare()

        def call_peer_timed(n: int) -> None:
            for _ in range(n):
                peer_timed()

        def call_ours_timed(n: int) -> None:
            for _ in range(n):
                ours_timed()
            buffered.flush()

        def call_module_timed(n: int) -> None:
            for _ in range(n):
                module_timed()
            default.flush()

        ns = best_of(
            {
                "statsd incr": peer_incr,
                "buffered incr": ours_incr,
                "buffered timing": ours_timing,
                "unbuffered incr": ours_unbuffered,
                "bare call": call_bare,
                "statsd @timer call": call_peer_timed,
                "@timed call": call_ours_timed,
                "module @timed call": call_module_timed,
            },
            calls,
            rounds,
        )
        dropped = 0
        for client in (buffered, unbuffered, default):
            dropped += client.stats()["dropped_total"]
            client.close()
    finally:
        sink.kill()
        sink.wait()

    peer_overhead = ns["statsd @timer call"] - ns["bare call"]
    ours_overhead = ns["@timed call"] - ns["bare call"]
    module_overhead = ns["module @timed call"] - ns["bare call"]
    checks = [
        ("buffered incr / statsd incr", ns["buffered incr"] / ns["statsd incr"], 0.25),
        ("buffered timing / statsd incr", ns["buffered timing"] / ns["statsd incr"], 0.25),
        ("@timed overhead / statsd @timer overhead", ours_overhead / peer_overhead, 1 / 3),
        ("module @timed overhead / statsd @timer", module_overhead / peer_overhead, 1 / 3),
        ("unbuffered incr / statsd incr", ns["unbuffered incr"] / ns["statsd incr"], 1.1),
    ]
    print(f"per call, best of {rounds} rounds of {calls} calls (ns):")
    for name, value in ns.items():
        print(f"  {name:<24} {value:9.0f}")
    print(f"  {'@timed overhead':<24} {ours_overhead:9.0f}")
    print(f"  {'module @timed overhead':<24} {module_overhead:9.0f}")
    print(f"  {'statsd @timer overhead':<24} {peer_overhead:9.0f}")
    print("ratios (target):")
    for name, ratio, target in checks:
        verdict = "ok" if ratio <= target else "MISSED"
        print(f"  {name:<42} {ratio:5.3f}  (<= {target:.3f})  {verdict}")
    print(f"metrics dropped by statsd_metrics during the run: {dropped}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
