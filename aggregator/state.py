"""Aggregation state: per-receiver partial aggregates and the flusher's merged store.

Each receiving process fills an `Interval` and hands it over at every flush; the flusher merges
them into its `Store`, which carries what outlives an interval (gauge values, idle keys that
keep reporting zero, gauge TTLs). Counters, timer values and counts, and sets commute, so their
partial aggregates simply add up. Gauges do not: `3` then `-10` is -7, `-10` then `3` is 3. The
receivers share one socket, so each batch of datagrams carries a global sequence number taken
when it was read; a gauge keeps its last absolute value and the deltas after it with their
sequence numbers, and the merge replays them in arrival order across receivers.
"""

from __future__ import annotations

from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .daily import DailySets


@dataclass(slots=True)
class Gauge:
    """A gauge's writes in one interval: the last absolute value and the deltas after it."""

    set_seq: int  # batch sequence of the last absolute value; -1 when none was seen
    value: float | None
    deltas: list[tuple[int, float]] = field(default_factory=list)  # (batch sequence, delta)


def replay(previous: float | None, writes: list[Gauge]) -> float:
    """A gauge's value after `writes` (from any receivers), in arrival order."""
    last = max((g for g in writes if g.value is not None), key=lambda g: g.set_seq, default=None)
    if last is None or last.value is None:
        value, start = (0 if previous is None else previous), -1
    else:
        value, start = last.value, last.set_seq
    deltas = [d for g in writes for d in g.deltas if g is last or d[0] > start]
    if len(writes) > 1:
        deltas.sort(key=lambda d: d[0])  # stable: one batch's deltas keep their order
    for _, delta in deltas:
        value += delta
    return value


@dataclass
class Interval:
    """What one receiver collected since its last hand-off."""

    counters: dict[str, float] = field(default_factory=dict)
    timers: dict[str, array] = field(default_factory=dict)  # array("d"): 8 bytes a value
    # Sample-rate scaled timer counts, only for keys that saw a sampled value; for the other
    # keys the count is len(values). Keeps the common unsampled path to one list append.
    timer_counts: dict[str, float] = field(default_factory=dict)
    gauges: dict[str, Gauge] = field(default_factory=dict)
    sets: dict[str, set[str]] = field(default_factory=dict)
    seq: int = 0  # sequence number of the batch being parsed (set by the receiver)
    packets: int = 0
    metrics: int = 0
    bad: int = 0
    rejects: Counter[str] = field(default_factory=Counter)  # bad lines by reason
    # What was read and deliberately not stored (DogStatsD events, service checks, ignored
    # fields), by internal counter name under prefix_stats; each line counts once a name.
    extras: Counter[str] = field(default_factory=Counter)
    last_msg_seen: float = 0.0
    names: int = 0  # distinct keys created in this interval (for the name cap)

    def reject(self, reason: str, n: int = 1) -> None:
        self.bad += n
        self.rejects[reason] += n

    def timer_count(self, key: str) -> float:
        count = self.timer_counts.get(key)
        return len(self.timers[key]) if count is None else count

    def drop(self, kind: str, patterns: list[str]) -> None:
        """Forget keys of `kind` matching mgmt delete arguments (exact or `prefix.*`)."""
        maps: dict[str, list[dict[str, Any]]] = {
            "counters": [self.counters],
            "gauges": [self.gauges],
        }
        maps["timers"] = [self.timers, self.timer_counts]
        for mapping in maps[kind]:
            for key in matching(mapping, patterns):
                del mapping[key]


def matching(keys, patterns: list[str]) -> list[str]:
    """Keys matched by mgmt delete arguments: an exact key, or a folder ending in `.*`."""
    found: list[str] = []
    for pattern in patterns:
        if pattern in keys:
            found.append(pattern)
        if pattern.endswith(".*"):
            folder = pattern[:-1]
            found.extend(k for k in keys if k.startswith(folder) and k != pattern)
    return list(dict.fromkeys(found))


@dataclass
class Store:
    """The flusher's view: merged intervals plus what persists between flushes."""

    counters: dict[str, float] = field(default_factory=dict)
    timers: dict[str, array] = field(default_factory=dict)
    timer_counts: dict[str, float] = field(default_factory=dict)
    gauges: dict[str, float] = field(default_factory=dict)
    gauge_ttl: dict[str, int] = field(default_factory=dict)
    sets: dict[str, set[str]] = field(default_factory=dict)
    max_names: int = 500_000
    bad_lines_seen: int = 0  # since start, for the mgmt `stats` command
    rejects: Counter[str] = field(default_factory=Counter)
    last_msg_seen: float = 0.0
    daily: DailySets = field(default_factory=DailySets)  # outlives flushes and config reloads

    def names(self) -> int:
        return len(self.counters) + len(self.timers) + len(self.gauges) + len(self.sets)

    def _room(self, mapping: dict, key: str, dropped: list[int]) -> bool:
        if key in mapping:
            return True
        if self.names() < self.max_names:
            return True
        dropped[0] += 1
        return False

    def merge(self, intervals: list[Interval], prefix_stats: str, gauge_ttl: int | None) -> None:
        """Add the receivers' intervals; `gauge_ttl` is set when idle gauges expire."""
        dropped = [0]
        counters = self.counters
        for iv in intervals:
            for key, value in (
                (f"{prefix_stats}.bad_lines_seen", iv.bad),
                (f"{prefix_stats}.packets_received", iv.packets),
                (f"{prefix_stats}.metrics_received", iv.metrics),
            ):
                counters[key] = counters.get(key, 0) + value
            for name, count in iv.extras.items():  # created when first seen
                key = f"{prefix_stats}.{name}"
                counters[key] = counters.get(key, 0) + count
            for key, increment in iv.counters.items():
                if self._room(counters, key, dropped):
                    counters[key] = counters.get(key, 0) + increment
            for key, values in iv.timers.items():
                if not self._room(self.timers, key, dropped):
                    continue
                mine = self.timers.get(key)
                if mine is None:
                    self.timers[key] = values
                    self.timer_counts[key] = iv.timer_count(key)
                else:
                    mine.extend(values)
                    self.timer_counts[key] = self.timer_counts.get(key, 0) + iv.timer_count(key)
            for key, members in iv.sets.items():
                if not self._room(self.sets, key, dropped):
                    continue
                seen = self.sets.get(key)
                if seen is None:
                    self.sets[key] = members
                else:
                    seen |= members
        self._merge_gauges(intervals, gauge_ttl, dropped)
        if dropped[0]:
            key = f"{prefix_stats}.bad_lines_seen"
            counters[key] = counters.get(key, 0) + dropped[0]
            self.bad_lines_seen += dropped[0]
            self.rejects["too_many_names"] += dropped[0]
        for iv in intervals:
            self.bad_lines_seen += iv.bad
            self.rejects.update(iv.rejects)
            self.last_msg_seen = max(self.last_msg_seen, iv.last_msg_seen)

    def _merge_gauges(self, intervals: list[Interval], ttl: int | None, dropped: list[int]):
        writes: dict[str, list[Gauge]] = {}
        for iv in intervals:
            for key, gauge in iv.gauges.items():
                writes.setdefault(key, []).append(gauge)
        gauges = self.gauges
        for key, gauge_writes in writes.items():
            if self._room(gauges, key, dropped):
                gauges[key] = replay(gauges.get(key), gauge_writes)
                if ttl is not None:
                    self.gauge_ttl[key] = ttl

    def drop(self, kind: str, pattern: str) -> list[str]:
        """mgmt delcounters/deltimers/delgauges: remove keys matching one argument."""
        kinds: dict[str, dict[str, Any]] = {
            "counters": self.counters,
            "timers": self.timers,
            "gauges": self.gauges,
        }
        mapping = kinds[kind]
        deleted = matching(mapping, [pattern])
        for key in deleted:
            del mapping[key]
            if kind == "timers":
                self.timer_counts.pop(key, None)
            if kind == "gauges":
                self.gauge_ttl.pop(key, None)
        return deleted
