"""A cardinality attack: a million distinct metric names (or set members) at a live aggregator.

For each cap (max_metric_names), a fresh aggregator (10 s flushes, 2 receivers) gets 1,000,000
distinct counter names, 20 per datagram, at 100,000 names/s from the C load generator; then
three flushes. Printed: the names kept (statsd.numStats), the names rejected and counted
(too_many_names), what the kernel dropped, and the memory of the whole process tree (PSS:
before, peak, and after the attack, while the kept names report 0 every flush).

The `members` scenario sends 1,000,000 distinct members of one set instead: sets have no cap
on members (the reference has none either), so that memory is bounded by rate x interval.

    .venv/bin/python reliability/cardinality.py                       # caps 100000 and 500000
    .venv/bin/python reliability/cardinality.py --caps 100000 --names 1000000 2000000 --members
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from harness import Aggregator, Carbon, build, conditions

PER_DATAGRAM = 20
RATE = 100_000  # names per second


def attack(workdir: Path, kind: str, count: int) -> object:
    lines = (
        [(f"card.n{i}:1|c", 1.0, 0.0) for i in range(count)]
        if kind == "names"
        else [(f"card.users:member{i}|s", 0.0, 0.0) for i in range(count)]
    )
    per = [lines[i : i + PER_DATAGRAM] for i in range(0, count, PER_DATAGRAM)]
    return build(workdir / f"{kind}-{count}.bin", per)


def run(workdir: Path, cap: int, kind: str, count: int) -> dict:
    carbon = Carbon()
    agg = Aggregator(carbon, {"max_metric_names": cap, "flush_interval": 10}, workdir)
    try:
        time.sleep(2)
        before = agg.pss_mib()
        drops = agg.socket_drops()
        workload = attack(workdir, kind, count)
        sent, took = agg.offer(workload, RATE / PER_DATAGRAM, count / RATE)
        carbon.wait_flushes(3)
        last = carbon.poll()[-1]
        stats = agg.stats()
        result = {
            "cap": cap,
            "kind": kind,
            "sent": sent * PER_DATAGRAM,
            "seconds": took,
            "kept": last.get("statsd.numStats", 0),
            "rejected": stats.get("messages.rejected.too_many_names", 0),
            "bad_lines": stats.get("messages.bad_lines_seen", 0),
            "kernel_drops": agg.socket_drops() - drops,
            "before": before,
            "peak": agg.memory.peak_kib / 1024,
            "after": agg.pss_mib(),
            "flush_bytes": last.get("stats.statsd.graphiteStats.flush_length", 0),
            "health": agg.health(),
        }
    finally:
        agg.stop()
        carbon.stop()
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--caps", type=int, nargs="+", default=[100_000, 500_000])
    p.add_argument("--names", type=int, nargs="+", default=[1_000_000])
    p.add_argument("--members", action="store_true", help="also the set-members attack")
    args = p.parse_args()
    print(f"conditions: {conditions()}", flush=True)
    runs = []
    with tempfile.TemporaryDirectory(prefix="cardinality-") as tmp:
        for cap in args.caps:
            for count in args.names:
                runs.append(run(Path(tmp), cap, "names", count))
                print(runs[-1], flush=True)
        if args.members:
            runs.append(run(Path(tmp), max(args.caps), "members", max(args.names)))
            print(runs[-1], flush=True)
    print(f"\nconditions at the end: {conditions()}")
    for r in runs:
        what = "names" if r["kind"] == "names" else "set members"
        print(
            f"{r['sent']:>9,} distinct {what} in {r['seconds']:.1f} s, cap {r['cap']:,}: series "
            f"kept {r['kept']:,.0f} (the aggregator's own 4 included), rejected and counted "
            f"{r['rejected']:,} (bad_lines_seen {r['bad_lines']:,}), kernel drops "
            f"{r['kernel_drops']:,} datagrams; PSS {r['before']:.0f} MiB before, peak "
            f"{r['peak']:.0f} MiB, {r['after']:.0f} MiB after; each flush "
            f"{r['flush_bytes'] / 1e6:.1f} MB to Carbon; health {r['health']}"
        )


if __name__ == "__main__":
    main()
