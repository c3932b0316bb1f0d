"""Lines waiting to be sent, and how they are packed into payloads.

Adding a line is `deque.append` itself, a C call that is atomic in CPython: no lock and no
Python frame on the application's path, which is what makes a buffered metric cost a fraction
of a `sendto`. The flusher takes lines out with `popleft`, also atomic, so a line added while a
flush is running is either in this flush or in the next one, never in both and never in neither.

Since adding runs no Python code, the flusher polls (see `Client._tick`) rather than being
woken, and the bound (`max_lines`) is enforced when draining: the oldest lines beyond it are
dropped and counted as `queue_full`. Between two drains the queue can therefore exceed the
bound by what the application adds while the flusher is blocked (a TCP write, a DNS lookup).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from itertools import repeat, starmap


class Buffer:
    def __init__(self, max_size: int, max_lines: int) -> None:
        self._lines: deque[str] = deque()
        self.add = self._lines.append
        self._max_size = max_size
        self._max_lines = max_lines
        self._drain_lock = threading.Lock()
        # Lines that fill one payload, estimated from the lines last drained.
        self.per_payload = max(1, max_size // 32)

    def __len__(self) -> int:
        return len(self._lines)

    def drain(self) -> tuple[list[str], int]:
        """Take every line that is in the queue now, oldest first: `(lines, dropped)`, where
        `dropped` is how many of the oldest were discarded to respect `max_lines`."""
        lines = self._lines
        with self._drain_lock:  # one drainer at a time: each popleft finds its line
            waiting = len(lines)
            dropped = max(0, waiting - self._max_lines)
            for _ in starmap(lines.popleft, repeat((), dropped)):
                pass
            taken = list(starmap(lines.popleft, repeat((), waiting - dropped)))
        if taken:
            average = sum(map(len, taken)) // len(taken) + 1
            self.per_payload = max(1, self._max_size // average)
        return taken, dropped

    def clear(self) -> None:
        """Forget every waiting line (in a forked child: they are the parent's to send)."""
        self._lines.clear()
        self._drain_lock = threading.Lock()


def pack(lines: list[str], max_size: int) -> Iterator[tuple[bytes, int]]:
    """Join lines with newlines into payloads of at most `max_size` bytes, in order.

    Yields `(payload, number_of_lines)`. The lines are joined once and cut at the last line
    boundary that fits, so the cost is per payload, not per line. Boundaries are marked with
    NUL (which no line contains) and turned into newlines per payload, so that an entry of two
    lines (a negative gauge) is never cut in two. A line longer than `max_size` travels alone:
    cutting it would corrupt it (whether it fits is then the socket's decision, and a refusal
    is counted as `too_large`).
    """
    data = "\0".join(lines).encode("ascii")
    start, end = 0, len(data)
    while start < end:
        cut = end
        if end - start > max_size:
            cut = data.rfind(b"\0", start, start + max_size + 1)
            if cut < start:  # the next line alone is longer than a payload
                cut = data.find(b"\0", start)
                cut = end if cut < 0 else cut
        payload = data[start:cut].replace(b"\0", b"\n")
        yield payload, payload.count(b"\n") + 1
        start = cut + 1
