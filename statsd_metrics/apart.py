"""Set members that must not be tied to anything else on the wire: `Client.set_apart`.

A pseudonym sent in the same datagram as a request's other metrics (its page size, its count
of updated players) is linked to them, and values that are stable per user (one team's page
size) relink the pseudonyms of two days. So members added with `set_apart` wait here, in the
process, and leave in payloads of their own once per `INTERVAL` of wall-clock time (aligned to
multiples of it, so an interval never spans a UTC day boundary): deduplicated, and shuffled, so
that neither their order nor the moment they leave says which request brought them. What one
interval's payloads still tell is which pseudonyms were active in it: docs/metrics.md, "Threat
model".

The application's path is `deque.append` (no lock, no Python frame), as in `Buffer`. The
flusher looks every few tens of milliseconds; at the first look after the interval turned it
takes exactly the lines that were already waiting at the look before the turn: lines added
since then (perhaps by the very request whose flush is running) wait for the next interval.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Iterator
from itertools import repeat, starmap

from .buffer import pack

# The aggregator's default flush interval: one batch per aggregation, and 86 400 s is a whole
# number of them, so a batch never holds two days' pseudonyms.
INTERVAL = 10.0
_shuffle = random.SystemRandom().shuffle


class ApartSets:
    """The set lines added since the last batch left, bounded by `max_lines`."""

    def __init__(self, max_size: int, max_lines: int, interval: float | None = None) -> None:
        self._lines: deque[str] = deque()
        self.add = self._lines.append
        self._max_size = max_size
        self._max_lines = max_lines
        self.interval = interval or INTERVAL
        self._lock = threading.Lock()
        self._window = self._now()
        self._seen = 0  # lines waiting at the previous look
        self._ready = 0  # lines of a finished interval, to be taken

    def __len__(self) -> int:
        return len(self._lines)

    def _now(self) -> int:
        return int(time.time() // self.interval)  # looked up per call: freezegun stands in

    def due(self) -> bool:
        """The interval has turned since the previous look, and lines seen then are waiting.

        Lines that only arrived after that look wait for the next turn, so a batch never
        leaves right after a request that would be alone in it, nor holds that request."""
        with self._lock:
            return self._look()

    def _look(self) -> bool:
        now, waiting = self._now(), len(self._lines)
        if now != self._window and self._seen > 0:
            self._ready = self._seen
        self._window, self._seen = now, waiting
        return self._ready > 0

    def take(self, force: bool = False) -> tuple[Iterator[tuple[bytes, int]], int]:
        """`(payloads, dropped)`: the lines of a finished interval, or every line if `force`d
        (at close). Each payload is `(bytes, lines)` holding only set lines, each distinct
        line once, in random order; `dropped` is how many of the oldest lines the bound
        discarded."""
        lines = self._lines
        with self._lock:
            if not (self._look() or force):
                return iter(()), 0
            count = len(lines) if force else min(self._ready, len(lines))
            dropped = max(0, count - self._max_lines)
            for _ in starmap(lines.popleft, repeat((), dropped)):
                pass
            taken = set(starmap(lines.popleft, repeat((), count - dropped)))
            self._seen, self._ready = max(0, self._seen - count), 0
        distinct = list(taken)
        _shuffle(distinct)
        return pack(distinct, self._max_size), dropped

    def clear(self) -> None:
        """Forget the waiting lines (in a forked child: they are the parent's to send)."""
        self._lines.clear()
        self._lock = threading.Lock()
        self._seen = self._ready = 0
