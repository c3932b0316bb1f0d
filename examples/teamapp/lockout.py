"""Login lockout per (account, client address): a lock no one can put on someone else.

An account locked after N failures from anywhere lets anyone lock anyone out with N wrong
passwords. Here failures are counted per account *and* address, and the lock holds only for
that address: the owner, from their own address, still logs in, while one address guessing one
account's password is stopped after N tries. Spreading guesses over many addresses is what
the per-address rate limit (`RateLimiter`, rule `login`) and the `security.login.failed` alert
are for. The address lives only in this process's memory, like the rate limiter's.

With several worker processes each keeps its own count, so an address gets up to N tries per
process: a shared store (the database, Redis) makes it exact.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

MAX_TRACKED = 100_000  # (account, address) pairs held; the oldest are forgotten past it


def _monotonic() -> float:
    return time.monotonic()  # looked up per call, so that freezegun can stand in


@dataclass
class _Failures:
    count: int = 0
    locked_until: float = 0.0
    last: float = 0.0


class Lockout:
    def __init__(
        self, attempts: int, seconds: float, clock: Callable[[], float] | None = None
    ) -> None:
        self.attempts = attempts
        self.seconds = seconds
        self.clock = clock or _monotonic
        self._pairs: dict[tuple[object, str], _Failures] = {}
        self._lock = threading.Lock()

    def locked(self, account: object, address: str) -> bool:
        with self._lock:
            entry = self._pairs.get((account, address))
            return entry is not None and entry.locked_until > self.clock()

    def failed(self, account: object, address: str) -> bool:
        """Count a wrong password; True when this failure locks the pair."""
        now = self.clock()
        with self._lock:
            entry = self._pairs.get((account, address))
            if entry is None or now - entry.last > self.seconds:  # old failures are forgiven
                entry = self._pairs[(account, address)] = _Failures()
                if len(self._pairs) > MAX_TRACKED:
                    self._pairs.pop(next(iter(self._pairs)))
            entry.count += 1
            entry.last = now
            if entry.count >= self.attempts:
                entry.count = 0
                entry.locked_until = now + self.seconds
                return True
            return False

    def succeeded(self, account: object, address: str) -> None:
        with self._lock:
            self._pairs.pop((account, address), None)
