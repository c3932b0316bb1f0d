"""Soak: minutes of steady load at half the measured maximum rate; nothing lost, memory flat,
flush times stable.

One aggregator (defaults: 2 receivers, 8 MiB receive buffer; 10 s flushes) gets the
benchmark's realistic mix (60% counters, 30% timers, 5% gauges, 5% sets, 10k names, 30%
sampled at 0.1; 20 metrics per datagram) from the C load generator at `--rate` metrics/s for
`--minutes`. The default rate, 300,000/s, is half the median highest rate without loss that
benchmarks/aggregator_throughput.py measured on this machine (docs/aggregator.md: 600,000
metrics/s). Every second the process tree's PSS and the socket's kernel drops are
sampled; every flush, its calculation and processing times, its write to Carbon and its
timestamp lag are read at the fake Carbon. Memory moves within each flush interval (values
pile up, then a flush frees them), so it is judged per interval: the lowest and the highest
sample of each 10 s window, compared over the run.

Printed: what was sent and what reached Carbon (lines, counters' counts, timers' counts), the
kernel's drops on the aggregator's socket and machine-wide (/proc/net/snmp), memory at the
start, the end and its slope, and flush times in the first and the second half.

    .venv/bin/python reliability/soak.py                    # 5 minutes at 300,000 metrics/s
    .venv/bin/python reliability/soak.py --minutes 10 --rate 250000
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

from harness import Aggregator, Carbon, conditions, kernel_udp, mix_workload

PER_DATAGRAM = 20


def slope_mib_per_min(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MiB) samples, in MiB per minute."""
    times, values = zip(*samples, strict=True)
    mt, mv = statistics.fmean(times), statistics.fmean(values)
    num = sum((t - mt) * (v - mv) for t, v in samples)
    den = sum((t - mt) ** 2 for t in times) or 1.0
    return num / den * 60


def halves(values: list[float]) -> tuple[list[float], list[float]]:
    mid = len(values) // 2
    return values[:mid], values[mid:]


def describe(values: list[float]) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return f"median {statistics.median(values):.0f}, p95 {p95:.0f}, max {max(values):.0f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--minutes", type=float, default=5.0)
    p.add_argument("--rate", type=float, default=300_000, help="metrics per second")
    args = p.parse_args()
    seconds = args.minutes * 60
    print(f"conditions at the start: {conditions()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        workload = mix_workload(Path(tmp))
        carbon = Carbon()
        agg = Aggregator(carbon, {"flush_interval": 10}, Path(tmp))
        memory: list[tuple[float, float]] = []
        drop_seconds: list[tuple[float, int]] = []  # (time, drops in that second)
        stop = threading.Event()

        def sample() -> None:
            start, last = time.monotonic(), agg.socket_drops()
            while not stop.wait(1):
                now, drops = time.monotonic() - start, agg.socket_drops()
                memory.append((now, agg.pss_mib()))
                if drops > last:
                    drop_seconds.append((time.time(), drops - last))
                last = drops

        try:
            sampler = threading.Thread(target=sample, daemon=True)
            snmp, drops = kernel_udp(), agg.socket_drops()
            sampler.start()
            sent, took = agg.offer(workload, args.rate / PER_DATAGRAM, seconds)
            carbon.wait_flushes(2)  # the socket's backlog and the last interval reach Carbon
            stop.set()
            got = carbon.received()
            snmp_after, socket_drops = kernel_udp(), agg.socket_drops() - drops
            flushes = [f for f in carbon.poll() if f.get("stats_counts.statsd.metrics_received")]
            health, stats = agg.health(), agg.stats()
        finally:
            stop.set()
            agg.stop()
            carbon.stop()
    want = workload.expected(sent)
    print(f"\nconditions at the end: {conditions()}")
    print(
        f"offered {args.rate:,.0f} metrics/s for {seconds:.0f} s: sent {sent:,} datagrams "
        f"({sent * PER_DATAGRAM / took:,.0f} metrics/s achieved)"
    )
    for name in ("lines", "counters", "timers"):
        loss = 1 - got[name] / want[name]
        print(
            f"  {name:8}: sent {want[name]:>14,.0f}, at Carbon {got[name]:>14,.0f}: loss {loss:.4%}"
        )
    print(
        f"  kernel: {socket_drops} datagrams dropped on the aggregator's socket; machine-wide "
        f"RcvbufErrors +{snmp_after['RcvbufErrors'] - snmp['RcvbufErrors']}, InErrors "
        f"+{snmp_after['InErrors'] - snmp['InErrors']}; bad_lines_seen "
        f"{stats.get('messages.bad_lines_seen')}; health {health}"
    )
    windows: dict[int, list[float]] = {}
    for t, v in memory:
        windows.setdefault(int(t // 10), []).append(v)
    lows = [(k * 10.0, min(v)) for k, v in sorted(windows.items())]
    highs = [(k * 10.0, max(v)) for k, v in sorted(windows.items())]
    fifth = max(1, len(lows) // 5)
    for label, series in (("low", lows), ("high", highs)):
        first = statistics.median(v for _, v in series[:fifth])
        last = statistics.median(v for _, v in series[-fifth:])
        print(
            f"memory (PSS, process tree), each 10 s window's {label:4}: first fifth median "
            f"{first:.0f} MiB, last fifth median {last:.0f} MiB, slope "
            f"{slope_mib_per_min(series):+.2f} MiB/min"
        )
    arrivals = [f["received_at"] for f in flushes]
    near = sum(n for t, n in drop_seconds if any(0 <= a - t <= 3 for a in arrivals))
    print(
        f"kernel drops fell in {len(drop_seconds)} of {len(memory)} seconds; "
        f"{near} of {sum(n for _, n in drop_seconds)} in the 3 s before a flush reached Carbon"
    )
    for label, key in (
        ("calculation (ms)", "stats.statsd.graphiteStats.calculationtime"),
        ("processing (ms)", "stats.statsd.processing_time"),
        ("write to Carbon (ms)", "stats.statsd.graphiteStats.flush_time"),
        ("timestamp lag (s)", "stats.gauges.statsd.timestamp_lag"),
    ):
        a, b = halves([f[key] for f in flushes if key in f])
        print(f"flush {label:20}: first half {describe(a)}; second half {describe(b)}")


if __name__ == "__main__":
    main()
