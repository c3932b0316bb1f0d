"""Distinct members of chosen sets since 00:00 UTC: exact daily active users.

A set counts distinct members per flush interval, and an application process only knows the
users it served itself: summed over N processes or hosts, one user is counted up to N times.
The aggregator is where every process's members meet, and a day is the same problem as an
interval with a longer window, so for the sets named by `daily_sets` the flusher keeps every
member seen since 00:00 UTC and writes the running count at each flush.

Why built-in hashes, not the members: the state holds each member's `hash()`, SipHash keyed by
a random per-process key chosen at start (unless PYTHONHASHSEED fixes it), so it holds no
pseudonym (a pseudonym must never reach disk or Graphite; a memory dump of the state does not
hold one either), and a 64-bit int plus its set slot is about 70 bytes where the 16-character
pseudonym would be 105 (benchmarks/daily_users.py). The count is exact up to hash collisions:
among n members the expected number of colliding pairs is n^2 / 2^65, 3e-8 for a million
members.

Why a cap, not a sketch: with a cap the count is exact wherever the cap is not reached, the
memory is bounded (cap x ~70 bytes, whoever sends random members), and no dependency is needed;
a HyperLogLog would be bounded at a few kilobytes but off by about 1% at every size. Newcomers
beyond the cap are not counted: `add` reports them, and the flush counts them as dropped.

Cost per flush: only the members of the interval being flushed are added (set.update over
their cached hashes, in C); the day's set is never copied.

Forgotten when a flush falls on a new UTC day, and at a restart: memory only, by design.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Sequence

DAY = 86400  # seconds in a UTC day (Unix time has no leap seconds)


def matcher(patterns: Sequence[str]) -> Callable[[str], bool]:
    """A predicate on set keys: the name (the key before its tags) matches a glob pattern."""
    if not patterns:
        return lambda key: False
    regex = re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns))
    cache: dict[str, bool] = {}

    def matches(key: str) -> bool:
        found = cache.get(key)
        if found is None:
            if len(cache) > 100_000:  # keys are bounded by max_metric_names; this is too
                cache.clear()
            found = cache[key] = regex.match(key.partition(";")[0]) is not None
        return found

    return matches


class DailySets:
    """The members of each daily set seen since 00:00 UTC of `day`, bounded in total."""

    def __init__(self) -> None:
        self.day = -1  # days since 1970-01-01 UTC; -1 before the first flush
        self.members: dict[str, set[int]] = {}
        self.total = 0  # members held, over every key
        self.dropped = 0  # newcomers not counted because of the cap, since start
        self.capped_day = -1  # the day the cap was last reached (to log it once a day)

    def roll(self, ts: float) -> bool:
        """Forget everything when `ts` falls on another UTC day; True when it did."""
        day = int(ts // DAY)
        if day == self.day:
            return False
        self.day, self.members, self.total = day, {}, 0
        return True

    def add(self, key: str, members: Iterable[str], cap: int) -> int:
        """Count `members` of `key` for today; returns how many newcomers the cap refused."""
        day_set = self.members.get(key)
        if day_set is None:
            day_set = self.members[key] = set()
        before = len(day_set)
        hashes = map(hash, members)
        room = cap - self.total
        if isinstance(members, set | frozenset) and len(members) <= room:
            day_set.update(hashes)  # cannot pass the cap: the usual case, all in C
            refused = 0
        else:
            refused = 0
            for h in hashes:
                if h in day_set:
                    continue
                if len(day_set) - before < room:
                    day_set.add(h)
                else:
                    refused += 1
        self.total += len(day_set) - before
        self.dropped += refused
        return refused

    def count(self, key: str) -> int:
        day_set = self.members.get(key)
        return 0 if day_set is None else len(day_set)

    def keep_only(self, wanted: Callable[[str], bool]) -> None:
        """Forget the keys `wanted` (a predicate) no longer selects, after a config reload."""
        for key in [k for k in self.members if not wanted(k)]:
            self.total -= len(self.members.pop(key))
