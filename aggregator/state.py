"""Aggregation state: per-receiver partial aggregates and the flusher's merged store.

Each receiving process fills an `Interval` and hands it over at every flush; the flusher merges
them into its `Store`, which carries what outlives an interval (gauge values, idle keys that
keep reporting zero, gauge TTLs). Partial aggregates are built so that merging one of them
reproduces the reference's arithmetic exactly: counters and timer counts are plain sums, timer
values are kept, and gauge deltas that arrive before any absolute value are kept in order so
they can be applied to the previous value the way the reference applies them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

# A gauge in an Interval: a float is an absolute value (deltas after it already applied);
# a list holds deltas, in arrival order, relative to whatever the gauge was before.
GaugeEntry = float | list[float]


@dataclass
class Interval:
    """What one receiver collected since its last hand-off."""

    counters: dict[str, float] = field(default_factory=dict)
    timers: dict[str, list[float]] = field(default_factory=dict)
    # Sample-rate scaled timer counts, only for keys that saw a sampled value; for the other
    # keys the count is len(values). Keeps the common unsampled path to one list append.
    timer_counts: dict[str, float] = field(default_factory=dict)
    gauges: dict[str, GaugeEntry] = field(default_factory=dict)
    sets: dict[str, set[str]] = field(default_factory=dict)
    packets: int = 0
    metrics: int = 0
    bad: int = 0
    rejects: Counter[str] = field(default_factory=Counter)  # bad lines by reason
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
        maps = {"counters": [self.counters], "gauges": [self.gauges]}
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
    timers: dict[str, list[float]] = field(default_factory=dict)
    timer_counts: dict[str, float] = field(default_factory=dict)
    gauges: dict[str, float] = field(default_factory=dict)
    gauge_ttl: dict[str, int] = field(default_factory=dict)
    sets: dict[str, set[str]] = field(default_factory=dict)
    max_names: int = 500_000
    bad_lines_seen: int = 0  # since start, for the mgmt `stats` command
    rejects: Counter[str] = field(default_factory=Counter)
    last_msg_seen: float = 0.0

    def names(self) -> int:
        return len(self.counters) + len(self.timers) + len(self.gauges) + len(self.sets)

    def _room(self, mapping: dict, key: str, dropped: list[int]) -> bool:
        if key in mapping:
            return True
        if self.names() < self.max_names:
            return True
        dropped[0] += 1
        return False

    def merge(self, iv: Interval, prefix_stats: str, gauge_ttl: int | None) -> None:
        """Add one receiver's interval; `gauge_ttl` is set when idle gauges expire."""
        dropped = [0]
        counters = self.counters
        for key, value in (
            (f"{prefix_stats}.bad_lines_seen", iv.bad),
            (f"{prefix_stats}.packets_received", iv.packets),
            (f"{prefix_stats}.metrics_received", iv.metrics),
        ):
            counters[key] = counters.get(key, 0) + value
        for key, value in iv.counters.items():
            if self._room(counters, key, dropped):
                counters[key] = counters.get(key, 0) + value
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
        gauges = self.gauges
        for key, entry in iv.gauges.items():
            if not self._room(gauges, key, dropped):
                continue
            if entry.__class__ is list:
                value = gauges.get(key, 0)
                for delta in entry:
                    value += delta
                gauges[key] = value
            else:
                gauges[key] = entry
            if gauge_ttl is not None:
                self.gauge_ttl[key] = gauge_ttl
        for key, members in iv.sets.items():
            if not self._room(self.sets, key, dropped):
                continue
            mine = self.sets.get(key)
            if mine is None:
                self.sets[key] = members
            else:
                mine |= members
        if dropped[0]:
            key = f"{prefix_stats}.bad_lines_seen"
            counters[key] = counters.get(key, 0) + dropped[0]
            iv.reject("too_many_names", dropped[0])
        self.bad_lines_seen += iv.bad
        self.rejects.update(iv.rejects)
        self.last_msg_seen = max(self.last_msg_seen, iv.last_msg_seen)

    def drop(self, kind: str, pattern: str) -> list[str]:
        """mgmt delcounters/deltimers/delgauges: remove keys matching one argument."""
        mapping = {"counters": self.counters, "timers": self.timers, "gauges": self.gauges}[kind]
        deleted = matching(mapping, [pattern])
        for key in deleted:
            del mapping[key]
            if kind == "timers":
                self.timer_counts.pop(key, None)
            if kind == "gauges":
                self.gauge_ttl.pop(key, None)
        return deleted
