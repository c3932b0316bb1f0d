"""StatsD wire format -> validated samples accumulated into an `Interval`.

The grammar is the reference's (multi-metric packets, multi-value lines, sample rates, DogStatsD
`|#k:v` tags, key sanitising), with its accidents replaced by clean rejections that are counted
in `bad_lines_seen` (and by reason in `Interval.rejects`):

* a value must be a plain finite decimal number: no `0x10`, `" "`, `Infinity`, `1_000`;
* the type must be one of c, ms, h, d, g, s (the reference counts unknown types as counters);
* a trailing `\\r` ends the line (CRLF), it is not part of the type;
* a sample rate is read in full (`@1e-1` is 0.1) and must be > 0;
* lines with invalid UTF-8, longer than `max_line_length`, or whose key sanitises to nothing;
* datagrams larger than `max_datagram_size`;
* new names beyond `max_metric_names` in one interval.

This is the receiving hot path: the loop is written for CPython speed (locals, caches of
sanitised keys and parsed numbers, the common single-group untagged line first).
"""

from __future__ import annotations

import time

from .config import Config
from .naming import sanitize
from .state import Interval

TYPES = frozenset(("c", "ms", "h", "d", "g", "s"))
TIMER_TYPES = frozenset(("ms", "h", "d"))
_CACHE_LIMIT = 100_000


def number(text: str) -> float | None:
    """A plain finite decimal (`1`, `-2.5`, `.5`, `5.`, `1e3`); None for anything else.

    Python's float() also takes whitespace, underscores, non-ASCII digits, inf and nan, which
    StatsD clients never mean; JS Number() takes hex and blanks, which the reference accepts
    by accident. Both kinds are rejected here.
    """
    try:
        value = float(text)
    except ValueError:
        return None
    if value - value != 0 or not text.isascii() or "_" in text:
        return None  # inf/nan, or a non-ASCII digit form, or 1_000
    if text[0] <= " " or text[-1] <= " ":
        return None  # surrounding whitespace
    return value


class Parser:
    """Feeds datagrams into an Interval; holds the caches, so one per receiving process."""

    def __init__(self, config: Config) -> None:
        self.configure(config)

    def configure(self, config: Config) -> None:
        self.max_datagram = config.max_datagram_size
        self.max_line = config.max_line_length
        self.max_names = config.max_metric_names
        self.sanitizing = config.key_name_sanitize
        self.keys: dict[str, str] = {}  # raw key -> key ("" when it sanitises to nothing)
        self.numbers: dict[str, float | None] = {}
        self.rates: dict[str, float | None] = {}

    def feed(self, data: bytes, iv: Interval) -> None:
        """One datagram (or one TCP chunk of complete lines)."""
        iv.packets += 1
        iv.last_msg_seen = time.time()
        if len(data) > self.max_datagram:
            iv.reject("oversized_datagram")
            return
        try:
            text = data.decode()
        except UnicodeDecodeError:
            self.lines(self._valid_lines(data, iv), iv)
            return
        self.lines(text.split("\n") if "\n" in text else (text,), iv)

    def _valid_lines(self, data: bytes, iv: Interval) -> list[str]:
        good = []
        for raw in data.split(b"\n"):
            try:
                good.append(raw.decode())
            except UnicodeDecodeError:
                iv.metrics += 1
                iv.reject("invalid_utf8")
        return good

    def lines(self, lines, iv: Interval) -> None:
        keys = self.keys
        numbers = self.numbers
        counters = iv.counters
        timers = iv.timers
        timer_counts = iv.timer_counts
        max_line = self.max_line
        metrics = 0
        for text in lines:
            if not text:
                continue
            line = text[:-1] if text[-1] == "\r" else text
            if not line:
                continue
            metrics += 1
            if len(line) > max_line:
                iv.reject("line_too_long")
                continue
            if "|#" in line:
                split = self._tagged(line, iv)
                if split is None:
                    continue
                key, rest = split
                sep = ":"
            else:
                name, sep, rest = line.partition(":")
                key = keys.get(name)
                if key is None:
                    key = self._key(name)
            if not key:
                iv.reject("empty_name")
                continue
            if not sep:
                iv.reject("no_value")
                continue
            for group in rest.split(":") if ":" in rest else (rest,):
                value, bar, typ = group.partition("|")
                if not bar:
                    iv.reject("no_type")
                    continue
                rate = 1.0
                if "|" in typ:
                    typ, _, extra = typ.partition("|")
                    rate = self._rate(extra.partition("|")[0])
                    if rate is None:
                        iv.reject("bad_sample_rate")
                        continue
                if typ == "s":
                    members = iv.sets.get(key)
                    if members is None:
                        if iv.names >= self.max_names:
                            iv.reject("too_many_names")
                            continue
                        iv.names += 1
                        members = iv.sets[key] = set()
                    members.add(value or "0")
                    continue
                v = numbers.get(value)
                if v is None:
                    v = self._number(value)
                    if v is None:
                        iv.reject("bad_value")
                        continue
                if typ == "c":
                    c = counters.get(key)
                    if c is None:
                        if iv.names >= self.max_names:
                            iv.reject("too_many_names")
                            continue
                        iv.names += 1
                        c = 0
                    counters[key] = c + (v if rate == 1.0 else v * (1 / rate))
                elif typ in TIMER_TYPES:
                    if v < 0:
                        iv.reject("negative_timer")
                        continue
                    values = timers.get(key)
                    if values is None:
                        if iv.names >= self.max_names:
                            iv.reject("too_many_names")
                            continue
                        iv.names += 1
                        values = timers[key] = []
                    values.append(v)
                    if rate != 1.0 or key in timer_counts:
                        count = timer_counts.get(key)
                        if count is None:
                            count = len(values) - 1.0
                        timer_counts[key] = count + 1 / rate
                elif typ == "g":
                    self._gauge(key, value, v, iv)
                else:
                    iv.reject("unknown_type")
        iv.metrics += metrics

    def _gauge(self, key: str, text: str, v: float, iv: Interval) -> None:
        gauges = iv.gauges
        current = gauges.get(key)
        if current is None and iv.names >= self.max_names:
            iv.reject("too_many_names")
            return
        if current is None:
            iv.names += 1
        if text[0] not in "+-":
            gauges[key] = v
        elif current is None:
            gauges[key] = [v]  # relative to the value before this interval
        elif current.__class__ is list:
            current.append(v)
        else:
            gauges[key] = current + v

    def _key(self, raw: str, key: str | None = None) -> str:
        """Sanitise (and cache under `raw`) a key; "" when nothing usable is left."""
        key = raw if key is None else key
        if self.sanitizing:
            key = sanitize(key)
        if key.startswith(";"):
            key = ""  # tags without a name
        if len(self.keys) >= _CACHE_LIMIT:
            self.keys.clear()
        self.keys[raw] = key
        return key

    def _tagged(self, line: str, iv: Interval) -> tuple[str, str] | None:
        """Split `name:rest|#tags[|more fields]` into (key with `;tag`s, rest + more fields)."""
        metric, _, tagtext = line.partition("|#")
        if "|#" in tagtext:
            iv.reject("repeated_tags")
            return None
        tagtext, bar, more = tagtext.partition("|")
        name, sep, rest = metric.partition(":")
        if not sep:
            iv.reject("no_value")
            return None
        if bar:
            rest = f"{rest}|{more}"
        raw = f"{name}|#{tagtext}"
        key = self.keys.get(raw)
        if key is None:
            tags = [t.replace(";", "_", 1).replace(":", "=", 1) for t in tagtext.split(",") if t]
            key = self._key(raw, ";".join([name, *tags]))
        return key, rest

    def _number(self, text: str) -> float | None:
        value = number(text) if text else None
        if value is not None:
            if len(self.numbers) >= _CACHE_LIMIT:
                self.numbers.clear()
            self.numbers[text] = value
        return value

    def _rate(self, text: str) -> float | None:
        rate = self.rates.get(text, -1.0)
        if rate == -1.0:
            rate = number(text[1:]) if text[:1] == "@" and text[1:2] not in ("+", "-") else None
            if rate is not None and rate <= 0:
                rate = None
            if len(self.rates) < 1000:
                self.rates[text] = rate
        return rate
