"""Set members that must not be tied to anything else on the wire: `Client.set_apart`.

A pseudonym sent in the same datagram as a request's other metrics (its page size, its count
of updated players) is linked to them, and values that are stable per user (one team's page
size) relink the pseudonyms of two days. So members added with `set_apart` wait here,
in the process, and leave in payloads of their own once per `INTERVAL` of wall-clock time
(aligned to multiples of it, so an interval never spans a UTC day boundary): deduplicated,
and shuffled, so that neither their order nor the moment they leave says which request
brought them. What one interval's payloads still tell is which pseudonyms were active in it:
docs/metrics.md, "Threat model".

The application's path is `deque.append`, as in `Buffer` (no lock, no Python frame); the
flusher takes the lines out when the interval has turned.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator

from .buffer import Buffer, pack

# The aggregator's default flush interval: one batch per aggregation, and 86 400 s is a whole
# number of them, so a batch never holds two days' pseudonyms.
INTERVAL = 10.0
_shuffle = random.SystemRandom().shuffle


class ApartSets:
    """The set lines added since the last batch left, bounded by `max_lines`."""

    def __init__(self, max_size: int, max_lines: int, interval: float | None = None) -> None:
        self._buffer = Buffer(max_size, max_lines)
        self.add = self._buffer.add
        self._max_size = max_size
        self.interval = interval or INTERVAL
        self._window = self._now()
        self._seen = 0  # lines waiting at the previous look

    def _now(self) -> int:
        return int(time.time() // self.interval)  # looked up per call: freezegun stands in

    def due(self) -> bool:
        """The interval has turned since the previous look, and lines seen then are waiting.

        The flusher looks every few tens of milliseconds. Lines that only arrived after the
        turn wait for the next one, so a batch never leaves right after a request that would
        be alone in it."""
        now, waiting = self._now(), len(self._buffer)
        turned = now != self._window and self._seen > 0
        self._window, self._seen = now, waiting
        return turned

    def take(self, force: bool = False) -> tuple[Iterator[tuple[bytes, int]], int]:
        """`(payloads, dropped)` of the lines waiting, if `due()` or `force`d (at close).

        Each payload is `(bytes, lines)` holding only set lines, each distinct line once, in
        random order; `dropped` is how many of the oldest lines the bound discarded."""
        if not (self.due() or force):
            return iter(()), 0
        lines, dropped = self._buffer.drain()
        self._seen = 0
        distinct = list(set(lines))
        _shuffle(distinct)
        return pack(distinct, self._max_size), dropped

    def clear(self) -> None:
        """Forget the waiting lines (in a forked child: they are the parent's to send)."""
        self._buffer.clear()
        self._seen = 0
