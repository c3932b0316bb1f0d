"""The app's own rate limits: a sliding window of recent hits per (rule, key), in memory.

The key may be a client address: it lives only in this process's memory and never reaches a
metric (metrics name the rule, not who hit it).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class RateLimiter:
    def __init__(
        self, limits: dict[str, tuple[int, float]], clock: Callable[[], float] = time.monotonic
    ):
        """`limits` maps a rule name to (hits allowed, per seconds)."""
        self.limits = limits
        self.clock = clock
        self._hits: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, rule: str, key: str) -> bool:
        """Record a hit; False when it is over the rule's limit (and then it is not recorded)."""
        allowed, window = self.limits[rule]
        now = self.clock()
        with self._lock:
            hits = self._hits.setdefault((rule, key), deque())
            while hits and hits[0] <= now - window:
                hits.popleft()
            if len(hits) >= allowed:
                return False
            hits.append(now)
            if len(self._hits) > 100_000:  # bound memory under a flood of distinct keys
                self._forget_idle(now)
            return True

    def _forget_idle(self, now: float) -> None:
        longest = max(window for _, window in self.limits.values())
        for key in [k for k, h in self._hits.items() if not h or h[-1] <= now - longest]:
            del self._hits[key]
