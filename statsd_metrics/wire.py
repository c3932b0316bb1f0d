"""The StatsD line: `name:value|type[|@rate][|#key:value,...]`, and how input becomes one.

Everything the application hands us (names, tag keys and values, set members) passes through
here before it reaches a socket, so this is where hostile input is made harmless: whatever the
text, the result is exactly one line that the reference daemon parses as exactly one metric.

- Names keep what the reference daemon keeps, so a migrating application's series stay where
  they are: only what would break the line or cannot travel in ASCII is changed here, and
  changed the way the reference's key rules would store it (whitespace runs become `_`; `:`,
  `|`, `@`, `#`, `,`, control characters and non-ASCII characters are deleted). Everything else
  (`api.users(get)`, `x..y`) is sent as given and the aggregator applies the rest of the rules.
  The rules, for the client and the aggregator, are in one table: docs/naming.md.
- Tag keys and values keep `[A-Za-z0-9_.-]`: accents are folded (`café` -> `cafe`), `/`
  becomes `-` and every other run of characters becomes one `_`.
- Set members are percent-encoded instead: a set counts *distinct* values, and a lossy mapping
  would merge different users into one.
- Numbers must be finite; timings must also be >= 0 (the reference rejects negative timers).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Mapping
from datetime import timedelta
from decimal import Decimal
from numbers import Integral, Real
from typing import Any, NamedTuple
from urllib.parse import quote, unquote

COUNTER = "c"
GAUGE = "g"
TIMER = "ms"
SET = "s"

TagsArg = Mapping[str, object] | Iterable[str] | None


class Rejected(ValueError):
    """An input that cannot become a metric. `reason` is the key it is counted under."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason = reason


_DISALLOWED = re.compile(r"[^A-Za-z0-9_.\-]+")
# JavaScript's `\s` (what the reference daemon's key rules use), not Python's: the two differ
# on U+001C-U+001F, U+0085 and U+FEFF.
_JS_WHITESPACE = re.compile(
    "[\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]+"
)
# What would break the line (`:` `|` `@` `#`, control characters; `,` which starts
# Telegraf-style tags for aggregators that read them) or cannot be sent in ASCII.
_UNSENDABLE = re.compile(r"[:|@#,\x00-\x1f\x7f]|[^\x00-\x7f]")
# A name must keep at least one character that the reference's key rules keep.
_KEPT = re.compile(r"[A-Za-z0-9_.\-/;=]")


def _component(text: str) -> str:
    if not text.isascii():
        decomposed = unicodedata.normalize("NFKD", text)
        text = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _DISALLOWED.sub("_", text.replace("/", "-"))


def describe(value: object) -> str:
    """What a rejected value was, for a log line: its type and length, never the value itself
    (a value in the wrong place may be an e-mail address or a token)."""
    try:
        return f"{type(value).__name__} of length {len(value)}"  # type: ignore[arg-type]
    except TypeError:
        return type(value).__name__


def sanitize_name(name: object) -> str:
    """A metric name made safe for the line, changed only where the reference would change it
    anyway (whitespace runs -> `_`, then `:|@#,`, control and non-ASCII characters deleted)."""
    if not isinstance(name, str):
        raise Rejected("bad_name", f"names are str, not {type(name).__name__}")
    clean = _UNSENDABLE.sub("", _JS_WHITESPACE.sub("_", name))
    if not _KEPT.search(clean):
        raise Rejected("bad_name", f"a name ({describe(name)}) with no character that is kept")
    return clean


def sanitize_tag(text: object) -> str:
    """A tag key or value: never empty, never a separator of the line or of the tag list."""
    return _component(str(text)) or "_"


def format_tags(tags: TagsArg, constant: Mapping[str, str | None] | None = None) -> str:
    """`|#k:v,...` sorted by key (one series per tag set, whatever order the caller used).

    `tags` is a mapping or an iterable of `"key:value"` strings (a string without `:` is a
    bare DogStatsD tag). Per-call tags override client-wide `constant` tags of the same key.
    """
    merged: dict[str, str | None] = dict(constant or {})
    merged.update(parse_tags(tags))
    if not merged:
        return ""
    return "|#" + ",".join(
        key if value is None else f"{key}:{value}" for key, value in sorted(merged.items())
    )


def parse_tags(tags: TagsArg) -> dict[str, str | None]:
    """Sanitised `{key: value}` (value None for a bare tag) from either accepted form."""
    if tags is None:
        return {}
    if isinstance(tags, Mapping):
        return {sanitize_tag(key): sanitize_tag(value) for key, value in tags.items()}
    if isinstance(tags, str | bytes) or not isinstance(tags, Iterable):
        raise Rejected(
            "bad_tags", f"tags are a mapping or a list of 'k:v', not {type(tags).__name__}"
        )
    parsed: dict[str, str | None] = {}
    for tag in tags:
        if not isinstance(tag, str):
            raise Rejected("bad_tags", f"a tag is a str, not {type(tag).__name__}")
        key, sep, value = tag.partition(":")
        parsed[sanitize_tag(key)] = sanitize_tag(value) if sep else None
    return parsed


def format_number(value: Any) -> str:  # anything: checked here, at run time
    """A counter or gauge value: ints exactly, floats by shortest repr, never NaN or inf."""
    kind = type(value)
    if kind is int:
        return str(value)
    if kind is not float:
        if isinstance(value, bool) or not isinstance(value, Real | Decimal):
            raise Rejected("bad_value", f"{describe(value)} is not a number")
        if isinstance(value, Integral):
            return str(int(value))
        value = float(value)
    if not math.isfinite(value):  # a float by now
        raise Rejected("bad_value", "a number that is not finite")
    return repr(value)


def format_ms(value: Any) -> str:
    """A timing in milliseconds (microsecond resolution); `timedelta` is converted."""
    kind = type(value)
    if kind is float and 0.0 <= value < math.inf:  # Client.timing inlines it
        return f"{value:.3f}"
    if kind is int and value >= 0:
        return str(value)
    if isinstance(value, timedelta):
        value = value.total_seconds() * 1000.0
    text = format_number(value)
    if text[0] == "-":
        raise Rejected("bad_value", "a negative timing")
    return text if isinstance(value, Integral) else f"{float(text):.3f}"


def format_histogram(value: object) -> str:
    """A histogram or distribution value, which travels as a timer: a number >= 0, exactly as
    given (not rounded to microseconds: it need not be a duration)."""
    text = format_number(value)
    if text[0] == "-":
        raise Rejected("bad_value", "a negative histogram value (sent as a timer)")
    return text


def format_rate(rate: object) -> str:
    """`|@rate` for 0 < rate < 1; nothing for a rate of 1 or more, which is sent unsampled
    (as the `statsd` package does)."""
    if isinstance(rate, bool) or not isinstance(rate, Real) or not float(rate) > 0:
        raise Rejected("bad_rate", f"a sample rate must be a number > 0, not {describe(rate)}")
    if float(rate) >= 1:
        return ""
    return f"|@{float(rate)!r}"


def format_set_member(value: object) -> str:
    """A set member, percent-encoded: distinct inputs stay distinct, and stay on one line.
    Floats are members as the `statsd` package sends them (`str(2.3)`)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise Rejected("bad_value", f"set members are str, int or float, not {describe(value)}")
    text = quote(str(value), safe="")
    if not text:
        raise Rejected("bad_value", "empty set member")
    return text


class Metric(NamedTuple):
    """One metric as it appears on the wire (the prefix and constant tags included)."""

    name: str
    type: str
    value: int | float | str
    rate: float
    tags: dict[str, str | None]
    delta: bool = False


def parse_line(line: str) -> Metric:
    """The inverse of what the client writes (used by the test recorder and by tests)."""
    body, _, tag_text = line.partition("|#")
    name, _, rest = body.partition(":")
    value_text, _, rest = rest.partition("|")
    kind, _, rate_text = rest.partition("|")
    rate = float(rate_text[1:]) if rate_text.startswith("@") else 1.0
    tags: dict[str, str | None] = {}
    for tag in filter(None, tag_text.split(",")):
        key, sep, tag_value = tag.partition(":")
        tags[key] = tag_value if sep else None
    if kind == SET:
        return Metric(name, kind, unquote(value_text), rate, tags)
    value: int | float
    try:
        value = int(value_text)
    except ValueError:
        value = float(value_text)
    delta = kind == GAUGE and value_text[0] in "+-"
    return Metric(name, kind, value, rate, tags, delta)
