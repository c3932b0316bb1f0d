"""Burst: twice the maximum rate for a while; the loss is counted where it happens, and the
aggregator recovers.

One aggregator (defaults: 2 receivers, 8 MiB receive buffer; 1 s flushes) and the benchmark's
realistic mix (20 metrics per datagram), in three phases with a pause between them so that each
phase's metrics are flushed before the next begins:

  before   half the maximum (`--max` / 2), `--seconds`
  burst    twice the maximum (`--max` x 2), `--seconds`: more than the receivers can read
  after    half the maximum again, twice as long: the aggregator must keep up as before

Per phase: datagrams and metrics sent, metrics that reached Carbon, the datagrams the kernel
dropped on the aggregator's socket (the `drops` column of /proc/net/udp: this socket alone) and
machine-wide (RcvbufErrors and InErrors of /proc/net/snmp, other processes included), and the
aggregator's own counts (packets and lines received, bad lines). The loss is accounted for
when sent = reached Carbon + kernel drops x 20. Then health, and the flush times per phase.
The default maximum, 600,000 metrics/s, is docs/aggregator.md's median for this mix here.

    .venv/bin/python reliability/burst.py
    .venv/bin/python reliability/burst.py --max 600000 --seconds 10
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from harness import Aggregator, Carbon, conditions, kernel_udp, mix_workload

PER_DATAGRAM = 20


def phase(agg: Aggregator, carbon: Carbon, workload, name: str, rate: float, *, seconds: float):
    snmp, drops, flushes = kernel_udp(), agg.socket_drops(), len(carbon.poll())
    before = carbon.received()
    stats = agg.stats()
    sent, took = agg.offer(workload, rate / PER_DATAGRAM, seconds)
    time.sleep(1.0)  # the socket's backlog is read
    carbon.wait_flushes(3)  # and flushed, and delivered
    after, snmp_after, stats_after = carbon.received(), kernel_udp(), agg.stats()
    window = carbon.poll()[flushes:]
    dropped = agg.socket_drops() - drops
    return {
        "phase": name,
        "offered": rate,
        "achieved": sent * PER_DATAGRAM / took,
        "sent": sent * PER_DATAGRAM,
        "carbon": after["lines"] - before["lines"],
        "socket_drops": dropped,
        "rcvbuf_errors": snmp_after["RcvbufErrors"] - snmp["RcvbufErrors"],
        "in_errors": snmp_after["InErrors"] - snmp["InErrors"],
        "bad_lines": stats_after.get("messages.bad_lines_seen", 0)
        - stats.get("messages.bad_lines_seen", 0),
        "calculation_ms": [
            f["stats.statsd.graphiteStats.calculationtime"]
            for f in window
            if "stats.statsd.graphiteStats.calculationtime" in f
        ],
        "health": agg.health(),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--max", type=float, default=600_000, help="the maximum, metrics/s")
    p.add_argument("--seconds", type=float, default=10.0)
    args = p.parse_args()
    print(f"conditions at the start: {conditions()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="burst-") as tmp:
        workload = mix_workload(Path(tmp))
        carbon = Carbon()
        agg = Aggregator(carbon, {"flush_interval": 1}, Path(tmp))
        try:
            results = [
                phase(agg, carbon, workload, "before", args.max / 2, seconds=args.seconds),
                phase(agg, carbon, workload, "burst", args.max * 2, seconds=args.seconds),
                phase(agg, carbon, workload, "after", args.max / 2, seconds=2 * args.seconds),
            ]
        finally:
            agg.stop()
            carbon.stop()
    print(f"conditions at the end: {conditions()}\n")
    for r in results:
        accounted = r["carbon"] + r["socket_drops"] * PER_DATAGRAM
        calc = r["calculation_ms"]
        print(
            f"{r['phase']:6}: offered {r['offered']:>9,.0f}/s, achieved {r['achieved']:>9,.0f}/s; "
            f"sent {r['sent']:>10,} metrics, at Carbon {r['carbon']:>10,.0f} "
            f"(loss {1 - r['carbon'] / r['sent']:.3%}); kernel dropped {r['socket_drops']:,} "
            f"datagrams on our socket (= {r['socket_drops'] * PER_DATAGRAM:,} metrics), machine-"
            f"wide RcvbufErrors +{r['rcvbuf_errors']:,}, InErrors +{r['in_errors']:,}; "
            f"unaccounted {r['sent'] - accounted:,.0f}; bad lines {r['bad_lines']}; flush "
            f"calculation median {statistics.median(calc) if calc else 0:.0f} ms, max "
            f"{max(calc, default=0):.0f} ms; health {r['health']}"
        )


if __name__ == "__main__":
    main()
