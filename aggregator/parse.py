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
sanitised keys, parsed numbers and whole counter lines, the common single-group untagged
line first).
"""

from __future__ import annotations

import time
from array import array

from .config import Config
from .naming import sanitize
from .state import Gauge, Interval

TIMER_TYPES = frozenset(("ms", "h", "d"))
_KEY_CACHE_LIMIT = 250_000
_NUMBER_CACHE_LIMIT = 20_000
_COUNTER_CACHE_LIMIT = 100_000


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
        self.numbers: dict[str, float] = {}  # only valid values are cached
        self.rates: dict[str, float] = {}
        # Whole counter lines seen before -> (key, increment). StatsD counters repeat the
        # same line (`requests:1|c`) over and over: a hit skips all the splitting.
        self.counted: dict[str, tuple[str, float]] = {}

    def feed(self, data: bytes, iv: Interval) -> None:
        """One datagram (or one TCP chunk of complete lines)."""
        self.feed_many((data,), iv)

    def feed_many(self, datagrams, iv: Interval) -> None:
        """Several datagrams (bytes-like) at once: one decode and one line loop for all."""
        longest = max(map(len, datagrams), default=0)
        kept = datagrams
        if longest > self.max_datagram:
            kept = [d for d in datagrams if len(d) <= self.max_datagram]
        self.feed_joined(b"\n".join(kept), len(datagrams), len(datagrams) - len(kept), longest, iv)

    def feed_joined(self, data: bytes, packets: int, oversized: int, longest: int, iv: Interval):
        """`packets` datagrams, `oversized` of them left out and the others joined with
        newlines into `data`; `longest` is the longest one's length.

        What is rare (oversized datagrams, invalid UTF-8, CR, long lines, tags) is detected
        once per batch with C-level checks, so the per-line loop only does the common work.
        """
        iv.packets += packets
        iv.last_msg_seen = time.time()
        if oversized:
            iv.reject("oversized_datagram", oversized)
        try:
            text = data.decode()
        except UnicodeDecodeError:
            self.lines(self._screen(self._valid_lines(data, iv), iv), iv)
            return
        if "\r" in text:  # CRLF line ends (a lone CR elsewhere stays and fails validation)
            text = text.replace("\r\n", "\n").removesuffix("\r")
        lines = text.split("\n")
        if longest > self.max_line or ("#" in text and "|#" in text):  # memchr first
            lines = self._screen(lines, iv)
        self.lines(lines, iv)

    def _valid_lines(self, data: bytes, iv: Interval) -> list[str]:
        good = []
        for raw in data.split(b"\n"):
            try:
                good.append(raw.decode().removesuffix("\r"))
            except UnicodeDecodeError:
                iv.metrics += 1
                iv.reject("invalid_utf8")
        return good

    def _screen(self, lines: list[str], iv: Interval) -> list[str]:
        """Reject over-long lines and rewrite tagged ones into `<token>:<rest>` lines."""
        out = []
        for line in lines:
            if len(line) > self.max_line:
                iv.metrics += 1
                iv.reject("line_too_long")
            elif "|#" in line:
                rewritten = self._tagged(line, iv)
                if rewritten is None:
                    iv.metrics += 1
                else:
                    out.append(rewritten)
            else:
                out.append(line)
        return out

    def lines(self, lines: list[str], iv: Interval, count: bool = True) -> None:
        """The hot loop: `name:value|type[|@rate]` lines into the interval's maps.

        A multi-value line (`name:1|c:2|ms`) is fed again as one line per value, so the
        loop itself handles exactly one group per line.
        """
        keys = self.keys
        numbers = self.numbers
        rates = self.rates
        counted = self.counted
        counters = iv.counters
        timers = iv.timers
        timer_counts = iv.timer_counts
        if count:
            iv.metrics += len(lines) - lines.count("")
        for line in lines:
            hit = counted.get(line)  # a whole counter line seen before: (key, increment)
            if hit is None:
                if not line:
                    continue
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
                if ":" in rest:  # rare: one line per value, in place (gauges depend on order)
                    self.lines([f"{name}:{group}" for group in rest.split(":")], iv, count=False)
                    continue
                value, bar, typ = rest.partition("|")
                if not bar:
                    iv.reject("no_type")
                    continue
                rate = 1.0
                if "|" in typ:
                    typ, _, extra = typ.partition("|")
                    extra = extra.partition("|")[0]
                    sampled = rates.get(extra) or self._rate(extra)
                    if sampled is None:
                        iv.reject("bad_sample_rate")
                        continue
                    rate = sampled
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
                if typ != "c":
                    if typ in TIMER_TYPES:
                        if v < 0:
                            iv.reject("negative_timer")
                            continue
                        values = timers.get(key)
                        if values is None:
                            if iv.names >= self.max_names:
                                iv.reject("too_many_names")
                                continue
                            iv.names += 1
                            values = timers[key] = array("d")
                        values.append(v)
                        if rate != 1.0 or key in timer_counts:
                            scaled = timer_counts.get(key)
                            if scaled is None:
                                scaled = len(values) - 1.0
                            timer_counts[key] = scaled + 1 / rate
                    elif typ == "g":
                        self._gauge(key, value, v, iv)
                    else:
                        iv.reject("unknown_type")
                    continue
                hit = (key, v if rate == 1.0 else v * (1 / rate))  # counted below, as a hit
                if len(counted) >= _COUNTER_CACHE_LIMIT:
                    counted.clear()
                counted[line] = hit
            key, inc = hit
            c = counters.get(key)
            if c is None:
                if iv.names >= self.max_names:
                    iv.reject("too_many_names")
                    continue
                iv.names += 1
                c = 0
            counters[key] = c + inc

    def _gauge(self, key: str, text: str, v: float, iv: Interval) -> None:
        """A signed value is a delta, anything else sets the gauge (see state.Gauge)."""
        gauge = iv.gauges.get(key)
        if gauge is None:
            if iv.names >= self.max_names:
                iv.reject("too_many_names")
                return
            iv.names += 1
        if text[0] not in "+-":
            iv.gauges[key] = Gauge(iv.seq, v)
            return
        if gauge is None:
            gauge = iv.gauges[key] = Gauge(-1, None)
        gauge.deltas.append((iv.seq, v))

    def _key(self, raw: str, key: str | None = None) -> str:
        """Sanitise (and cache under `raw`) a key; "" when nothing usable is left."""
        key = raw if key is None else key
        if self.sanitizing:
            clean = sanitize(key)
            key = key if clean == key else clean  # one string object, not two, when clean
        elif not sanitize(key.partition(";")[0]):
            key = ""  # kept raw, but paths are sanitised at output: no name would be left
        if key.startswith(";"):
            key = ""  # tags without a name
        if len(self.keys) >= _KEY_CACHE_LIMIT:
            self.keys.clear()
        self.keys[raw] = key
        return key

    def _tagged(self, line: str, iv: Interval) -> str | None:
        """`name:rest|#tags[|fields]` -> `<token>:rest[|fields]`, the key cached under token.

        The token is `name|#tags` with its colons turned into newlines: a line never holds a
        newline, so the token is unambiguous and holds no colon for the hot loop to split on.
        """
        metric, _, tagtext = line.partition("|#")
        if "|#" in tagtext:
            iv.reject("repeated_tags")
            return None
        tagtext, bar, more = tagtext.partition("|")
        name, sep, rest = metric.partition(":")
        if not sep:
            iv.reject("no_value")
            return None
        token = f"{name}|#{tagtext}".replace(":", "\n")
        if token not in self.keys:
            tags = [t.replace(";", "_", 1).replace(":", "=", 1) for t in tagtext.split(",") if t]
            self._key(token, ";".join([name, *tags]))
        return f"{token}:{rest}|{more}" if bar else f"{token}:{rest}"

    def _number(self, text: str) -> float | None:
        value = number(text) if text else None
        if value is not None:
            if len(self.numbers) >= _NUMBER_CACHE_LIMIT:
                self.numbers.clear()
            self.numbers[text] = value
        return value

    def _rate(self, text: str) -> float | None:
        """`@0.5` -> 0.5; None unless a plain positive number follows the `@`."""
        rate = number(text[1:]) if text[:1] == "@" and text[1:2] not in ("+", "-") else None
        if rate is None or rate <= 0:
            return None
        if len(self.rates) < 1000:
            self.rates[text] = rate
        return rate
