"""StatsD wire format -> validated samples accumulated into an `Interval`.

The grammar is the reference's (multi-metric packets, multi-value lines, sample rates, DogStatsD
`|#k:v` tags, key sanitising) plus the rest of the DogStatsD protocol (packed values
`t:1:2:3|d`, the fields `T<unix>`, `c:<container>`, `e:<external data>`, `card:<cardinality>`
in any order after the type, events `_e{..}` and service checks `_sc|..`, both counted and
otherwise ignored) and Telegraf-style tags in the name (`req,route=home:1|c`); its accidents
are replaced by clean rejections, each line counted at most once in `bad_lines_seen` (and by
reason in `Interval.rejects`):

* a value must be a plain finite decimal number: no `0x10`, `" "`, `Infinity`, `1_000`;
* the type must be one of c, ms, h, d, g, s (the reference counts unknown types as counters);
* a trailing `\\r` ends the line (CRLF), it is not part of the type;
* a sample rate is read in full (`@1e-1` is 0.1) and must be > 0;
* a field after the type must be one of the protocol's, each at most once;
* lines with invalid UTF-8, longer than `max_line_length`, or whose key sanitises to nothing;
* datagrams larger than `max_datagram_size`;
* new names beyond `max_metric_names` in one interval.

This is the receiving hot path: the loop is written for CPython speed (locals, caches of
sanitised keys, parsed numbers and whole counter lines, the common single-group untagged
line first). Whatever is rarer (other fields, several values, events, rejections) leaves the
loop for a method of its own.
"""

from __future__ import annotations

import time
from array import array

from .config import Config
from .naming import sanitize
from .rejections import Rejected, RejectionSampler, original
from .state import Gauge, Interval

TIMER_TYPES = frozenset(("ms", "h", "d"))
TYPES = frozenset(("c", "g", "s", *TIMER_TYPES))
NOT_METRICS = ("_e{", "_sc|")  # DogStatsD events and service checks
# DogStatsD fields for Datadog's origin detection: read, ignored, counted in the internal
# metrics as `ignored_fields.<name>` (so is `T<unix>`: docs/aggregator.md says why).
IGNORED_FIELDS = {"c:": "container_id", "e:": "external_data", "card:": "cardinality"}
Sample = tuple[str, str, float, float]  # type, value as sent, value, sample rate
_KEY_CACHE_LIMIT = 250_000
_NUMBER_CACHE_LIMIT = 20_000
_COUNTER_CACHE_LIMIT = 100_000
_KEPT_LIMIT = 100  # rejected lines kept for the log when nobody takes them (no receiver)


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


def compose(name: str, tags: list[str]) -> str:
    """The one internal key for a name and its tags: `name;k=v;bare`.

    Telegraf-style tags come from the name (`req,route=home`), DogStatsD ones from `|#`
    (`route:home`, its first `;` written `_` and first `:` `=`, as the reference does); both
    in one line merge, the name's first. Where tags land in a Graphite path is naming.py's.
    """
    base, *influx = name.split(",")
    parts = [base, *(t.replace(";", "_") for t in influx if t)]
    parts += [t.replace(";", "_", 1).replace(":", "=", 1) for t in tags if t]
    return ";".join(parts)


class Parser:
    """Feeds datagrams into an Interval; holds the caches, so one per receiving process."""

    def __init__(self, config: Config, sampler: RejectionSampler | None = None) -> None:
        self.sampler = sampler or RejectionSampler()
        # Rejected lines admitted for the log; the receiver empties it after each batch (it
        # knows the senders). The same list object for the whole life of the parser.
        self.rejected: list[Rejected] = []
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

    def reject(self, reason: str, line: str | bytes | None, iv: Interval, n: int = 1) -> None:
        """Count a rejection; keep the line for the log when the sampler admits it."""
        iv.reject(reason, n)
        left_out = self.sampler.admit(reason)
        if left_out is not None and len(self.rejected) < _KEPT_LIMIT:
            self.rejected.append(Rejected(reason, line, left_out))

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
            self.reject("oversized_datagram", None, iv, oversized)
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
                self.reject("invalid_utf8", raw, iv)
        return good

    def _screen(self, lines: list[str], iv: Interval) -> list[str]:
        """Reject over-long lines and rewrite tagged ones into `<token>:<rest>` lines."""
        out = []
        for line in lines:
            if len(line) > self.max_line:
                iv.metrics += 1
                self.reject("line_too_long", line, iv)
            elif "|#" in line:
                rewritten = self._tagged(line, iv)
                if rewritten is None:
                    iv.metrics += 1
                else:
                    out.append(rewritten)
            else:
                out.append(line)
        return out

    def lines(self, lines: list[str], iv: Interval) -> None:
        """The hot loop: `name:value|type[|@rate]` lines into the interval's maps.

        Any other line (several values or groups, other fields) goes to `_extended` once the
        cheap checks have seen it is not of the common form.
        """
        keys = self.keys
        numbers = self.numbers
        rates = self.rates
        counted = self.counted
        counters = iv.counters
        timers = iv.timers
        timer_counts = iv.timer_counts
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
                    self._not_a_metric(line, iv)
                    continue
                if not sep:
                    self.reject("no_value", line, iv)
                    continue
                if ":" in rest:  # rare: several values, or a field with a colon
                    self._extended(key, rest, line, iv)
                    continue
                value, bar, typ = rest.partition("|")
                if not bar:
                    self.reject("no_type", line, iv)
                    continue
                rate = 1.0
                if "|" in typ:
                    typ, _, extra = typ.partition("|")
                    rate = rates.get(extra, 0.0)  # only valid (> 0) plain rates are cached
                    if not rate:  # another field, more fields, or a bad rate
                        self._extended(key, rest, line, iv)
                        continue
                if typ == "s":
                    members = iv.sets.get(key)
                    if members is None:
                        if iv.names >= self.max_names:
                            self.reject("too_many_names", line, iv)
                            continue
                        iv.names += 1
                        members = iv.sets[key] = set()
                    members.add(value or "0")
                    continue
                v = numbers.get(value)
                if v is None:
                    v = self._number(value)
                    if v is None:
                        self.reject("bad_value", line, iv)
                        continue
                if typ != "c":
                    if typ in TIMER_TYPES:
                        if v < 0:
                            self.reject("negative_timer", line, iv)
                            continue
                        values = timers.get(key)
                        if values is None:
                            if iv.names >= self.max_names:
                                self.reject("too_many_names", line, iv)
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
                        if not self._gauge(key, value, v, iv):
                            self.reject("too_many_names", line, iv)
                    else:
                        self.reject("unknown_type", line, iv)
                    continue
                hit = (key, v if rate == 1.0 else v * (1 / rate))  # counted below, as a hit
                if len(counted) >= _COUNTER_CACHE_LIMIT:
                    counted.clear()
                counted[line] = hit
            key, inc = hit
            c = counters.get(key)
            if c is None:
                if iv.names >= self.max_names:
                    self.reject("too_many_names", line, iv)
                    continue
                iv.names += 1
                c = 0
            counters[key] = c + inc

    def _gauge(self, key: str, text: str, v: float, iv: Interval) -> bool:
        """A signed value is a delta, anything else sets the gauge (see state.Gauge); False
        when the name cap refused a new key."""
        gauge = iv.gauges.get(key)
        if gauge is None:
            if iv.names >= self.max_names:
                return False
            iv.names += 1
        if text[0] not in "+-":
            iv.gauges[key] = Gauge(iv.seq, v)
            return True
        if gauge is None:
            gauge = iv.gauges[key] = Gauge(-1, None)
        gauge.deltas.append((iv.seq, v))
        return True

    def _extended(self, key: str, rest: str, line: str, iv: Interval) -> None:
        """A line beyond `name:value|type[|@rate]`, off the hot path.

        DogStatsD: packed values sharing type and fields (`t:1:2:3|d|@0.5`), all taken or the
        line rejected, as the datadog agent does. The reference's groups, each with its type
        (`k:1|c:2|ms`; the field after the first value holds a colon): the good groups are
        taken, as the reference does, and a line with bad ones counts once.
        """
        groups = rest.split(":") if _is_groups(rest) else [rest]
        reason = None
        noted: set[str] = set()
        for group in groups:
            samples = self._group(group, noted)
            if isinstance(samples, str):
                reason = reason or samples
                continue
            for sample in samples:
                if not self._add(key, sample, iv):
                    reason = reason or "too_many_names"
        if reason:
            self.reject(reason, line, iv)
        if noted:
            iv.extras.update(noted)

    def _group(self, group: str, noted: set[str]) -> list[Sample] | str:
        """`values|type[|field...]` -> samples (type, value text, value, rate), or the reason
        to reject it. Ignored fields are added to `noted` (each counted once per line)."""
        values, bar, fields = group.partition("|")
        if not bar:
            return "no_type"
        typ, more, fields = fields.partition("|")
        if typ not in TYPES:
            return "unknown_type"
        rate = 1.0
        if more:
            seen = set()
            for f in fields.split("|"):
                kind = f[:1]
                if kind == "@":
                    parsed = self.rates.get(f) or self._rate(f)
                    if parsed is None:
                        return "bad_sample_rate"
                    rate = parsed
                elif kind == "T":
                    if not (f[1:].isdigit() and f[1:].isascii()):
                        return "bad_timestamp"
                    noted.add("ignored_fields.timestamp")
                else:
                    kind = f.partition(":")[0] + ":"
                    note = IGNORED_FIELDS.get(kind)
                    if note is None or ":" not in f:
                        return "unknown_field"
                    noted.add(f"ignored_fields.{note}")
                if kind in seen:
                    return "repeated_field"
                seen.add(kind)
        if typ == "s":  # a set member is text, colons included (DogStatsD packs no sets)
            return [(typ, values, 0.0, rate)]
        samples: list[Sample] = []
        for text in values.split(":"):
            v = self.numbers.get(text)
            if v is None:
                v = self._number(text)
                if v is None:
                    return "bad_value"
            if v < 0 and typ in TIMER_TYPES:
                return "negative_timer"
            samples.append((typ, text, v, rate))
        return samples

    def _add(self, key: str, sample: Sample, iv: Interval) -> bool:
        """One validated sample, as the hot loop adds it; False when the name cap refused a
        new key."""
        typ, text, v, rate = sample
        if typ == "g":
            return self._gauge(key, text, v, iv)
        mapping: dict = iv.counters if typ == "c" else iv.sets if typ == "s" else iv.timers
        if key not in mapping:
            if iv.names >= self.max_names:
                return False
            iv.names += 1
            mapping[key] = 0 if typ == "c" else set() if typ == "s" else array("d")
        if typ == "c":
            iv.counters[key] += v if rate == 1.0 else v * (1 / rate)
        elif typ == "s":
            iv.sets[key].add(text or "0")
        else:
            values = iv.timers[key]
            values.append(v)
            if rate != 1.0 or key in iv.timer_counts:
                count = iv.timer_counts.get(key)
                if count is None:
                    count = len(values) - 1.0
                iv.timer_counts[key] = count + 1 / rate
        return True

    def _not_a_metric(self, line: str, iv: Interval) -> None:
        """A line whose name gave no key: a DogStatsD event or service check (counted, not
        stored), or a rejection."""
        line = original(line)  # a tagged one was rewritten (see _tagged)
        if line.startswith("_e{"):
            if _is_event(line):
                iv.extras["events_received"] += 1
            else:
                self.reject("bad_event", line, iv)
        elif line.startswith("_sc|"):
            if _is_service_check(line):
                iv.extras["service_checks_received"] += 1
            else:
                self.reject("bad_service_check", line, iv)
        else:
            self.reject("empty_name", line, iv)

    def _key(self, raw: str, key: str | None = None) -> str:
        """Sanitise (and cache under `raw`) a key; "" when nothing usable is left, and for
        events and service checks."""
        if raw.startswith(NOT_METRICS):
            key = ""
        elif key is None:
            key = compose(raw, []) if "," in raw else raw
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

        The token is a newline then `name|#tags` with its colons turned into newlines: a line
        never holds a newline, so the token is unambiguous (rejections.original reads the
        line back) and holds no colon for the hot loop to split on.
        """
        metric, _, tagtext = line.partition("|#")
        if "|#" in tagtext:
            self.reject("repeated_tags", line, iv)
            return None
        tagtext, bar, more = tagtext.partition("|")
        name, sep, rest = metric.partition(":")
        if not sep:
            if line.startswith("_sc|"):
                self._not_a_metric(line, iv)
            else:
                self.reject("no_value", line, iv)
            return None
        token = f"\n{name}|#{tagtext}".replace(":", "\n")
        if token not in self.keys:
            self._key(
                token, "" if name.startswith(NOT_METRICS) else compose(name, tagtext.split(","))
            )
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


def _is_groups(rest: str) -> bool:
    """Whether the colons after the first `|` start the reference's groups (`1|c:2|ms`,
    `1|c|@0.5:2|ms`) rather than DogStatsD fields (`1|c|c:<container>`): a type never holds a
    colon, and of the fields after it only the origin-detection ones do."""
    _, typ, *fields = (*rest.split("|"), "")
    return ":" in typ or any(
        ":" in f and f.partition(":")[0] + ":" not in IGNORED_FIELDS for f in fields
    )


def _is_event(line: str) -> bool:
    """`_e{<title bytes>,<text bytes>}:<title>|<text>[|<field>...]` with matching lengths."""
    head, sep, body = line.partition("}:")
    sizes = head[3:].split(",")
    if not sep or len(sizes) != 2 or not all(s.isdigit() and s.isascii() for s in sizes):
        return False
    title, text = int(sizes[0]), int(sizes[1])
    raw = body.encode()
    after = raw[title + 1 + text :]
    return len(raw) >= title + 1 + text and raw[title : title + 1] == b"|" and after[:1] in b"|"


def _is_service_check(line: str) -> bool:
    """`_sc|<name>|<status 0-3>[|<field>...]`."""
    parts = line.split("|", 3)
    return len(parts) >= 3 and bool(parts[1]) and parts[2] in ("0", "1", "2", "3")
