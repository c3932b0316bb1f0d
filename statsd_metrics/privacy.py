"""Pseudonyms for counting users without knowing who they are.

Counting distinct active users needs *some* value per user on the wire (a StatsD set member).
That value is `HMAC-SHA256(period_key, user_id)`, cut to 64 bits, where `period_key` is itself
derived by HMAC from a secret in the application's configuration and the number of the current
rotation period (a UTC day by default). So:

* without the secret, a pseudonym cannot be traced back to a user, not even by trying every user
  id (that is why the hash is keyed: ids are small, enumerable numbers);
* pseudonyms change at every period boundary, so two days of traffic cannot be linked to the same
  person; rotation needs no coordination, because every process derives the same key for the
  same period from the same secret;
* the aggregator keeps set members only for one flush interval and writes only their count to
  Graphite: no pseudonym is ever stored.

Opting out is honoured by the callers (`business.BusinessMetrics.user_active`): an opted-out
user is not hashed and nothing is sent.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any

log = logging.getLogger(__name__)

SECRET_KEY = "STATSD_METRICS_USER_HASH_SECRET"
ROTATION_KEY = "STATSD_METRICS_USER_HASH_ROTATION"
DAY = 86_400.0
_CONTEXT = b"statsd-metrics/user-pseudonym/v1/"


def wall_clock() -> float:
    """`time.time()`, looked up at each call (so that freezegun and friends can stand in)."""
    return time.time()


class UserHasher:
    """Turns user ids into rotating, keyed pseudonyms (16 hex characters)."""

    def __init__(
        self,
        secret: str | bytes | None,
        *,
        rotation: float = DAY,
        clock: Callable[[], float] | None = None,
    ):
        if rotation <= 0:
            raise ValueError(f"rotation must be a positive number of seconds, not {rotation!r}")
        self.ephemeral = not secret
        if not secret:
            # Still private, but each process then hashes differently: with several worker
            # processes one user counts once per process. Configure a shared secret.
            log.warning("%s is not configured: using a random per-process key", SECRET_KEY)
            secret = secrets.token_bytes(32)
        self._secret = secret.encode() if isinstance(secret, str) else bytes(secret)
        self.rotation = float(rotation)
        self.clock = clock or wall_clock
        self._current: tuple[int, bytes] = (-1, b"")

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], *, clock: Callable[[], float] | None = None
    ) -> UserHasher:
        """Built from `STATSD_METRICS_USER_HASH_SECRET` and `..._ROTATION` (seconds)."""
        return cls(
            config.get(SECRET_KEY), rotation=float(config.get(ROTATION_KEY, DAY)), clock=clock
        )

    def period(self) -> int:
        """The number of the current rotation period, counted from the Unix epoch (UTC)."""
        return int(self.clock() // self.rotation)

    def _key(self, period: int) -> bytes:
        current = self._current  # one read: another thread may swap it meanwhile
        if current[0] != period:
            key = hmac.new(self._secret, _CONTEXT + str(period).encode(), hashlib.sha256).digest()
            current = self._current = (period, key)
        return current[1]

    def pseudonym(self, user_id: object) -> str:
        """The user's pseudonym for the current period."""
        key = self._key(self.period())
        return hmac.new(key, str(user_id).encode(), hashlib.sha256).hexdigest()[:16]
