"""Which rejected lines reach the log, and how they are written there.

Counters say how many lines were rejected and why; an operator chasing a misbehaving sender
also needs to see what it sends and who it is. A hostile or broken sender can make every line
bad, so only the first few of each reason per minute are kept for the log (per receiving
process), and the next logged one says how many were left out before it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

PER_MINUTE = 5  # logged rejected lines per reason per minute and receiving process
WINDOW = 60.0
SHOWN = 200  # characters of a rejected line that are logged


@dataclass(slots=True)
class Rejected:
    """A rejected line kept for the log; `line` is bytes when it was not valid UTF-8, None
    for a whole datagram (oversized: its text was never read)."""

    reason: str
    line: str | bytes | None
    left_out: int  # lines of this reason not logged in the window before this one


class RejectionSampler:
    """Admits the first `per_minute` rejections of each reason in each `window` seconds."""

    def __init__(
        self,
        per_minute: int = PER_MINUTE,
        clock: Callable[[], float] = time.monotonic,
        window: float = WINDOW,
    ) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self.window = window
        self.windows: dict[str, list] = {}  # reason -> [start, admitted, left out]

    def admit(self, reason: str) -> int | None:
        """None when this rejection is not to be logged; else how many of this reason were
        left out in the previous window (0 normally)."""
        now = self.clock()
        state = self.windows.get(reason)
        if state is None or now - state[0] >= self.window:
            left_out = 0 if state is None else state[2]
            self.windows[reason] = [now, 1, 0]
            return left_out if self.per_minute > 0 else None
        if state[1] < self.per_minute:
            state[1] += 1
            return 0
        state[2] += 1
        return None


def original(line: str) -> str:
    """A tagged line as the parser rewrote it (`\\nname|#k\\nv:1|c`, see
    parse.Parser._tagged) back in the sender's notation (`name:1|c|#k:v`); any other line as
    it is."""
    if not line.startswith("\n"):
        return line
    name, sep, rest = line[1:].partition(":")
    name, _, tags = name.partition("|#")
    return f"{name}{sep}{rest}|#{tags.replace(chr(10), ':')}"


def needles(item: Rejected) -> list[bytes]:
    """What to look for in the datagrams of the batch to find the rejected line's sender:
    the line as received, else (rewritten lines) the metric name."""
    if item.line is None:
        return []
    if isinstance(item.line, bytes):
        return [item.line]
    text = original(item.line)
    name = text.partition(":")[0].partition("|#")[0]
    return [n.encode() for n in (text, name) if n]


def without_members(text: str) -> str:
    """A set line with its member shown by length only: members are often user pseudonyms
    (docs/metrics.md), which must reach neither disk nor Graphite, and a log is on disk."""
    head, bar, tail = text.partition("|")
    if not bar or tail.partition("|")[0].strip() != "s":
        return text
    name, colon, member = head.partition(":")
    if not colon:  # no name to keep: all of it may be the member
        name, member = "", head
    return f"{name}{colon}<{len(member)} characters>|{tail}"


def message(item: Rejected, sender: str | None) -> str:
    """One log line: reason, sender, the line as Python repr (control characters escaped, so
    a line can never forge a log line), cut to SHOWN characters; a set's member only by its
    length."""
    if item.line is None:
        shown = "(the datagram, not read)"
    else:
        if isinstance(item.line, bytes):  # not UTF-8: latin-1 maps each byte to one character
            text: str | bytes = without_members(item.line.decode("latin-1")).encode("latin-1")
        else:
            text = without_members(original(item.line))
        cut = len(text) > SHOWN
        shown = repr(text[:SHOWN]) + (f" (first {SHOWN} of {len(text)})" if cut else "")
    more = f"; {item.left_out} more left out in the minute before" if item.left_out else ""
    sender = sender or "a sender not recorded"
    return f"rejected line ({item.reason}) from {sender}: {shown}{more}"
