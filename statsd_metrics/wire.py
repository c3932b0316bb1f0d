"""The StatsD line: `name:value|type[|@rate][|#key:value,...]`, and how input becomes one.

Everything the application hands us (names, tag keys and values, set members) passes through
here before it reaches a socket, so this is where hostile input is made harmless: whatever the
text, the result is exactly one line that the reference daemon parses as exactly one metric.

- Names and tags keep `[A-Za-z0-9_.-]`. Accents are folded (`café` -> `cafe`), `/` becomes `-`
  and every other run of characters becomes one `_`. That output is a fixed point of the
  reference daemon's own key sanitiser, so what we send is what Graphite stores.
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


def _component(text: str) -> str:
    if not text.isascii():
        decomposed = unicodedata.normalize("NFKD", text)
        text = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _DISALLOWED.sub("_", text.replace("/", "-"))


def sanitize_name(name: object) -> str:
    """A metric name as Graphite will store it; empty dot segments are removed."""
    if not isinstance(name, str):
        raise Rejected("bad_name", f"names are str, not {type(name).__name__}")
    clean = ".".join(part for part in _component(name).split(".") if part)
    if not clean:
        raise Rejected("bad_name", f"{name!r} has no usable character")
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
            raise Rejected("bad_tags", f"tag {tag!r} is not a str")
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
            raise Rejected("bad_value", f"{value!r} is not a number")
        if isinstance(value, Integral):
            return str(int(value))
        value = float(value)
    if not math.isfinite(value):
        raise Rejected("bad_value", f"{value!r} is not finite")
    return repr(value)


def format_ms(value: Any) -> str:
    """A timing in milliseconds (microsecond resolution); `timedelta` is converted."""
    kind = type(value)
    if kind is float and 0.0 <= value < math.inf:  # the common case (Client.timing inlines it)
        return f"{value:.3f}"
    if kind is int and value >= 0:
        return str(value)
    if isinstance(value, timedelta):
        value = value.total_seconds() * 1000.0
    text = format_number(value)
    if text[0] == "-":
        raise Rejected("bad_value", f"timing {text} is negative")
    return text if isinstance(value, Integral) else f"{float(text):.3f}"


def format_rate(rate: Any) -> str:
    """`|@rate` for 0 < rate < 1, nothing for 1."""
    if rate == 1:
        return ""
    if isinstance(rate, bool) or not isinstance(rate, Real) or not 0 < float(rate) < 1:
        raise Rejected("bad_rate", f"sample rate {rate!r} is not in (0, 1]")
    return f"|@{float(rate)!r}"


def format_set_member(value: object) -> str:
    """A set member, percent-encoded: distinct inputs stay distinct, and stay on one line."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise Rejected("bad_value", f"set members are str or int, not {type(value).__name__}")
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
