"""One flush: the merged Store -> Graphite plaintext, then the reference's clearing rules.

Pure computation on an explicit timestamp, so the math is unit-tested with an injected clock;
the daemon decides when to call it and where the payload goes.

A value that is not finite is never written. Inputs are finite, but their aggregates can
overflow (`1e308|c` twice, a sample rate of `@1e-300`, the squares of a timer of `1e200`), and
Whisper would store an infinity that graphite-render then writes into its JSON as `Infinity`,
which no JSON parser takes: every Grafana panel showing the series would fail. Such values are
counted in the store's rejects as `non_finite_value` and logged.

Sets named by `daily_sets` also get `daily_count`, the distinct members of the UTC day so far
(aggregator/daily.py): the members of each interval are added to the day's state before the
lines are written, and the day of a flush is the UTC day of its timestamp.
"""

from __future__ import annotations

import logging
import time
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice

from .config import Config
from .daily import matcher
from .jsnumber import js_str
from .naming import Namer
from .state import Store
from .stats import histogram_bins, keep_fields, timer_fields

log = logging.getLogger("aggregator.flush")

INTERNAL_COUNTERS = ("bad_lines_seen", "packets_received", "metrics_received")
DAILY_DROPPED = "daily_sets.dropped_members"  # counter under prefix_stats, from the first drop


CHUNK_LINES = 20_000  # lines per payload chunk: bounds the transient strings of a big flush


@dataclass
class FlushResult:
    payload: list[bytes]  # every line but the four graphiteStats ones, in encoded chunks
    lines: int
    ts: int


class Flush:
    """Computes flushes for one configuration; remembers the previous timestamp for lag."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.namer = Namer(config)
        self.interval_s = config.flush_interval
        self.previous_ts = 0
        self.lag_key = f"{config.prefix_stats}.timestamp_lag"
        self.is_daily = matcher(config.daily_sets)

    def init_store(self, store: Store) -> None:
        """The internal counters exist from the start, as 0, ahead of everything else."""
        for name in INTERNAL_COUNTERS:
            store.counters.setdefault(f"{self.config.prefix_stats}.{name}", 0)

    def __call__(self, store: Store, ts: int) -> FlushResult:
        if self.previous_ts > 0:
            store.gauges[self.lag_key] = ts - self.previous_ts - self.interval_s
        self.previous_ts = ts
        non_finite = store.rejects["non_finite_value"]
        daily = self.count_daily(store, ts)
        lines = self._lines(store, f" {ts}\n", daily)
        chunks, count = [], 0
        while block := list(islice(lines, CHUNK_LINES)):
            count += len(block)
            chunks.append("".join(block).encode())
        if store.rejects["non_finite_value"] > non_finite:
            log.warning(
                "flush of ts %d: %d values overflowed to infinity or NaN and were not written",
                ts, store.rejects["non_finite_value"] - non_finite,
            )  # fmt: skip
        self.clear(store)
        return FlushResult(chunks, count, ts)

    def count_daily(self, store: Store, ts: int) -> dict[str, int]:
        """Add this interval's members of the daily sets to the day; {key: today's count}."""
        daily, cap, is_daily = store.daily, self.config.daily_max_members, self.is_daily
        held = daily.total
        if daily.roll(ts) and held:
            log.info("daily sets: a new UTC day (ts %d); %d members forgotten", ts, held)
        daily.keep_only(is_daily)
        refused = 0
        for key, members in store.sets.items():
            if is_daily(key):
                refused += daily.add(key, members, cap)
        if refused:
            key = f"{self.config.prefix_stats}.{DAILY_DROPPED}"
            store.counters[key] = store.counters.get(key, 0) + refused
            if daily.capped_day != daily.day:
                daily.capped_day = daily.day
                log.warning(
                    "daily sets hold daily_max_members (%d) members: newcomers are not counted "
                    "until 00:00 UTC (counter %s)", cap, key,
                )  # fmt: skip
        keys = [k for k in store.sets if is_daily(k)]
        keys += [k for k in daily.members if k not in store.sets]
        return {key: daily.count(key) for key in keys}

    def _lines(self, store: Store, suffix: str, daily: dict[str, int]) -> Iterator[str]:
        """Every line of a flush, in the reference's order (`suffix`: the timestamp, newline)."""
        config, namer, interval = self.config, self.namer, self.interval_s
        started = time.perf_counter()
        bad = 0  # values that are not finite (x - x is NaN, truthy, for them only): not written
        for key, value in store.counters.items():
            rate_path, count_path = namer.counter(key)
            rate = value / interval
            if rate - rate:
                bad += 1
            else:
                yield f"{rate_path} {js_str(rate)}{suffix}"
            if count_path:
                if value - value:
                    bad += 1
                else:
                    yield f"{count_path} {js_str(value)}{suffix}"
        thresholds, wanted = config.percent_thresholds, config.calculated_timer_metrics
        for key, values in store.timers.items():
            bins = histogram_bins(key, config.histogram) if config.histogram else ()
            scaled = store.timer_counts.get(key, 0)
            fields = timer_fields(values, scaled, interval, thresholds, bins)
            if wanted:
                fields = keep_fields(fields, wanted)
            head, tail = namer.timer_prefix(key)
            for name, value in fields:
                if value - value:
                    bad += 1
                else:
                    yield f"{head}{name}{tail} {js_str(value)}{suffix}"
        processing_ms = int((time.perf_counter() - started) * 1000)
        for key, value in store.gauges.items():
            if value - value:
                bad += 1
            else:
                yield f"{namer.gauge_path(key)} {js_str(value)}{suffix}"
        for key, members in store.sets.items():
            yield f"{namer.set_path(key)} {len(members)}{suffix}"
        for key, count in daily.items():
            yield f"{namer.set_path(key, 'daily_count')} {count}{suffix}"
        num_stats = len(store.counters) + len(store.timers) + len(store.gauges) + len(store.sets)
        yield f"{namer.num_stats} {num_stats}{suffix}"
        calculation_ms = int((time.perf_counter() - started) * 1000)
        yield f"{namer.calculation_time} {calculation_ms}{suffix}"
        yield f"{namer.processing_time} {processing_ms}{suffix}"
        if bad:
            store.rejects["non_finite_value"] += bad

    def clear(self, store: Store) -> None:
        config = self.config
        if config.deletes("counters"):
            kept = (k for k in store.counters if any(n in k for n in INTERNAL_COUNTERS))
            store.counters = dict.fromkeys(kept, 0)
        else:
            store.counters = dict.fromkeys(store.counters, 0)
        if config.deletes("timers"):
            store.timers, store.timer_counts = {}, {}
        else:
            store.timers = {k: array("d") for k in store.timers}
            store.timer_counts = dict.fromkeys(store.timers, 0)
        if config.deletes("sets"):
            store.sets = {}
        else:
            store.sets = {k: set() for k in store.sets}
        if config.deletes("gauges"):
            for key in list(store.gauge_ttl):
                store.gauge_ttl[key] -= 1
                if store.gauge_ttl[key] < 1:
                    del store.gauge_ttl[key]
                    store.gauges.pop(key, None)

    def spool_stats(self, flushes: int, size: int, ts: int) -> str:
        """Gauges `<prefix_stats>.spool.{flushes,bytes}`: what waits for Carbon on disk.

        Ours, not the reference's (which has no spool). Stamped at write time like the
        graphiteStats lines: a flush that is spooled carries the spool as it was when it failed,
        so once replayed the history shows the spool growing through the outage.
        """
        prefix = f"{self.config.prefix_stats}.spool"
        return "".join(
            f"{self.namer.gauge_path(f'{prefix}.{name}')} {value} {ts}\n"
            for name, value in (("flushes", flushes), ("bytes", size))
        )

    def graphite_stats(self, stats: dict[str, float], ts: int) -> str:
        """The four `graphiteStats` lines about the previous write, stamped at write time."""
        return "".join(
            f"{self.namer.graphite_stat(name)} {js_str(stats[name])} {ts}\n"
            for name in ("last_exception", "last_flush", "flush_time", "flush_length")
        )
