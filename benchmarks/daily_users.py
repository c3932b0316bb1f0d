"""The cost of exact daily active users in the aggregator (aggregator/daily.py).

Measures, in this process, with the aggregator's own parser, store and flush:

  memory   bytes per member held for the day, for N distinct 16-hex-character pseudonyms
           arriving over a day of flushes (default 1,000,000, 10,000 new per flush), measured
           by tracemalloc (what is allocated and still held; the intervals' strings are freed
           as in the daemon) and as the resident set growth of a fresh child process; the
           peer is the same day kept as a Python set of the pseudonyms themselves
  flush    the time of one flush of an interval of 10,000 members with the day already
           holding 0, N/10 and N members, against the same flush without daily_sets (a plain
           set); only the interval's members are added, so it grows with the day only as
           a larger hash table misses the CPU caches more, and it is printed beside the
           time a copy of the day would take
  receive  parser time per line of `teamapp.users.active:<pseudonym>|s` against the same
           line of a set that is not a daily set: the receive path is the same code (the day
           is kept by the flusher), so the ratio is 1 within noise
  day      the flusher's CPU time for the whole day's additions

Bounded: one pass of each, about 30 s for a million members on a shared 2-core machine.
Figures are noisy under load: compare the ratios printed, not the absolute times.

Usage: python benchmarks/daily_users.py [--members N] [--per-flush K] [--repeat R]
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aggregator.config import from_mapping  # noqa: E402
from aggregator.daily import DailySets  # noqa: E402
from aggregator.flush import Flush  # noqa: E402
from aggregator.parse import Parser  # noqa: E402
from aggregator.state import Interval, Store  # noqa: E402

ACTIVE = "teamapp.users.active"
TS = 1_800_000_000  # a flush timestamp well inside one UTC day


def pseudonyms(start: int, count: int) -> list[str]:
    """Distinct 16-hex-character members, as `privacy.UserHasher` makes them."""
    return [f"{(n * 0x9E3779B97F4A7C15) & (2**64 - 1):016x}" for n in range(start, start + count)]


def fill(members: int, per_flush: int, mode: str) -> tuple[DailySets, set[str]]:
    """A day of `members` pseudonyms, `per_flush` at a time, kept by `mode`: "daily" (the
    aggregator's state) or "peer" (a set of the pseudonyms themselves)."""
    daily, peer = DailySets(), set()
    daily.roll(TS)
    for start in range(0, members, per_flush):
        batch = set(pseudonyms(start, min(per_flush, members - start)))
        if mode == "daily":
            daily.add(ACTIVE, batch, cap=members)
        else:
            peer |= batch
        del batch
    return daily, peer


def held_bytes(members: int, per_flush: int, mode: str) -> int:
    """Bytes still allocated once a day of `members` went through `mode` ("daily" or "peer")."""
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    kept = fill(members, per_flush, mode)
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    del kept
    return held


RSS_CHILD = """
import sys
sys.path.insert(0, sys.argv[1])
from benchmarks.daily_users import fill
import gc
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096
members, per_flush, mode = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
gc.collect()
base = rss()
kept = fill(members, per_flush, mode)
gc.collect()
print(rss() - base)
"""


def rss_growth(members: int, per_flush: int, mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", RSS_CHILD, str(ROOT), str(members), str(per_flush), mode],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return int(out.stdout)


def flush_seconds(day_size: int, per_flush: int, daily_sets: list[str], repeat: int) -> float:
    """Median time of one flush of `per_flush` new members with `day_size` already held."""
    config = from_mapping({"daily_sets": daily_sets, "daily_max_members": 10 * day_size + 10**7})
    flush, store = Flush(config), Store()
    flush.init_store(store)
    store.daily.roll(TS)
    for start in range(0, day_size, 100_000):
        store.daily.add(ACTIVE, set(pseudonyms(start, min(100_000, day_size - start))), 10**9)
    times = []
    for r in range(repeat):
        store.sets[ACTIVE] = set(pseudonyms(day_size + r * per_flush, per_flush))
        started = time.perf_counter()
        flush(store, TS + r)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def parse_seconds_per_line(name: str, lines: int, repeat: int) -> float:
    parser = Parser(from_mapping({}))
    members = pseudonyms(0, lines)
    datagrams = [
        "\n".join(f"{name}:{m}|s" for m in members[i : i + 20]).encode()
        for i in range(0, lines, 20)
    ]  # 20 lines a datagram, as a client's flush packs them
    best = []
    for _ in range(repeat):
        interval = Interval()
        started = time.perf_counter()
        for d in datagrams:
            parser.feed(d, interval)
        best.append(time.perf_counter() - started)
        assert len(interval.sets[name]) == lines
    return statistics.median(best) / lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", type=int, default=1_000_000, help="distinct members a day")
    ap.add_argument("--per-flush", type=int, default=10_000, help="new members per flush")
    ap.add_argument("--repeat", type=int, default=5, help="runs of each timing (median)")
    args = ap.parse_args()
    n, k = args.members, args.per_flush
    load = os.getloadavg()[0]
    print(f"daily users: {n:,} distinct members, {k:,} a flush; load average {load:.2f}")

    print("\nmemory held for the day (the peer keeps the pseudonyms themselves in a set)")
    for mode in ("daily", "peer"):
        traced = held_bytes(n, k, mode)
        rss = rss_growth(n, k, mode)
        print(
            f"  {mode:5}  {traced / 2**20:7.1f} MiB allocated ({traced / n:5.1f} B/member), "
            f"resident growth {rss / 2**20:7.1f} MiB ({rss / n:5.1f} B/member)"
        )

    print(f"\nflush of an interval of {k:,} members (median of {args.repeat})")
    plain = flush_seconds(0, k, [], args.repeat)
    print(f"  plain set (no daily_sets)           {plain * 1000:7.2f} ms")
    for day in (0, n // 10, n):
        t = flush_seconds(day, k, ["*users.active"], args.repeat)
        print(f"  daily set, {day:>9,} held already  {t * 1000:7.2f} ms  ({t / plain:4.2f}x plain)")

    day_set = set(map(hash, pseudonyms(0, n)))
    started = time.perf_counter()
    copy = set(day_set)
    copied = time.perf_counter() - started
    del copy, day_set
    print(f"  (copying a day of {n:,} hashes, which a flush never does: {copied * 1000:.1f} ms)")

    lines = min(n, 200_000)
    print(f"\nreceive path: parser time per set line ({lines:,} lines, median of {args.repeat})")
    plain_line = parse_seconds_per_line("teamapp.users.other", lines, args.repeat)
    daily_line = parse_seconds_per_line(ACTIVE, lines, args.repeat)
    print(f"  plain set line  {plain_line * 1e9:6.0f} ns")
    print(f"  daily set line  {daily_line * 1e9:6.0f} ns  ({daily_line / plain_line:4.2f}x plain)")

    daily = DailySets()
    daily.roll(TS)
    batches = [set(pseudonyms(s, min(k, n - s))) for s in range(0, n, k)]
    started = time.process_time()
    for batch in batches:
        daily.add(ACTIVE, batch, cap=n)
    spent = time.process_time() - started
    print(
        f"\nthe whole day's additions: {spent:.2f} s of flusher CPU for {n:,} members "
        f"({spent / n * 1e9:.0f} ns a member); counted {daily.count(ACTIVE):,}"
    )
    assert daily.count(ACTIVE) == n


if __name__ == "__main__":
    main()
