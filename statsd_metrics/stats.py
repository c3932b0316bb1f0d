"""What a client sent and what it dropped, and why: the client's own health, never a secret.

A metrics library that swallows errors must at least say what it swallowed. Every line that does
not leave the process is counted here under a short reason (`refused`, `bad_value`, ...), and the
first drop of each reason is logged once on the `statsd_metrics` logger, so a misconfigured
client is visible without flooding the application's logs.
"""

from __future__ import annotations

import logging
import threading

logger = logging.getLogger("statsd_metrics")


class Stats:
    """Counters shared by the application threads and the flusher.

    `sent_*` are only updated by the transport: under its lock, or on the lock-free UDP path,
    where an int `+=` is still exact under the GIL. Drops come from anywhere (a bad argument is
    counted on the application's thread) and take this object's own lock, held for a few
    attribute updates only, never around I/O, so a rejected metric never waits behind a send.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Start from zero with a fresh lock: a forked child keeps its own account (the parent's
        lock may have been held at the fork)."""
        self._lock = threading.Lock()
        self.sent_lines = 0
        self.sent_payloads = 0
        self._dropped: dict[str, int] = {}
        self.unreported: list[tuple[str, str]] = []

    def dropped(self, reason: str, lines: int = 1, detail: str = "") -> None:
        with self._lock:
            if reason not in self._dropped:
                self.unreported.append((reason, detail))
            self._dropped[reason] = self._dropped.get(reason, 0) + lines

    def report(self) -> None:
        """Log reasons seen for the first time. Called where no transport lock is held, so that
        a logging handler that itself records metrics cannot deadlock."""
        with self._lock:
            fresh, self.unreported = self.unreported, []
        for reason, detail in fresh:
            logger.warning(
                "statsd_metrics: dropping metrics (%s)%s; further drops are only counted, "
                "see Client.stats()",
                reason,
                f": {detail}" if detail else "",
            )

    def snapshot(self) -> dict[str, object]:
        with self._lock:
            dropped = dict(self._dropped)
            return {
                "sent_lines": self.sent_lines,
                "sent_payloads": self.sent_payloads,
                "dropped": dropped,
                "dropped_total": sum(dropped.values()),
            }
