"""Pseudonyms for counting users without knowing who they are.

Counting distinct active users needs *some* value per user on the wire (a StatsD set member).
That value is `HMAC-SHA256(period_key, user_id)`, cut to 64 bits, where `period_key` is itself
derived by HMAC from a secret in the application's configuration and the number of the current
rotation period: one UTC day by default, a few whole UTC days at most. So:

* without the secret, a pseudonym cannot be traced back to a user, not even by trying every user
  id (that is why the hash is keyed: ids are small, enumerable numbers). Any user knows one
  (id, pseudonym) pair, their own, so the secret must resist guessing from it: a short or
  word-like secret is refused (`secret_weakness`);
* pseudonyms change at every period boundary, and a period is whole UTC days, so the
  aggregator's daily count sees each user once a day; rotation needs no coordination, because
  every process derives the same key for the same period from the same secret;
* forward secrecy (a secret stolen today does not re-identify last week's captured traffic):
  with a fixed secret there is none, since every period key derives from it. Given the date
  it is for (`..._SECRET_DATE`), the secret is a ratchet (ratchet.py): each period's key comes
  from that day's secret, which comes from any earlier one but not from a later one, and the
  process keeps only the current day's; the operator advances the stored secret every day and
  destroys the old one: docs/metrics.md, "Threat model";
* set members leave the process apart from every other metric (`Client.set_apart`), and the
  aggregator keeps them in memory only, writing counts: no pseudonym is ever stored.

Opting out is honoured by the callers (`business.BusinessMetrics.user_active`): an opted-out
user is not hashed and nothing is sent.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import math
import re
import secrets
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from .ratchet import advance, day_number

log = logging.getLogger(__name__)

SECRET_KEY = "STATSD_METRICS_USER_HASH_SECRET"
ROTATION_DAYS_KEY = "STATSD_METRICS_USER_HASH_ROTATION_DAYS"
ROTATION_KEY = "STATSD_METRICS_USER_HASH_ROTATION"  # seconds: accepted for whole days only
ALLOW_WEAK_KEY = "STATSD_METRICS_USER_HASH_ALLOW_WEAK_SECRET"
SECRET_DATE_KEY = "STATSD_METRICS_USER_HASH_SECRET_DATE"
DAY = 86_400.0
MAX_ROTATION_DAYS = 3
MIN_SECRET_BYTES = 32
MIN_SECRET_BITS = 128
HOW_TO_MAKE_ONE = 'make one with: python -c "import secrets; print(secrets.token_hex(32))"'
_CONTEXT = b"statsd-metrics/user-pseudonym/v1/"
_SEPARATORS = b" \t-_.,;:'"


def wall_clock() -> float:
    """`time.time()`, looked up at each call (so that freezegun and friends can stand in)."""
    return time.time()


def secret_weakness(secret: bytes) -> str | None:
    """Why `secret` is too weak to key pseudonyms, or None.

    A user who knows their own id and pseudonym can test guesses of the secret offline, as
    fast as HMAC runs: so at least 32 bytes, about 128 bits by the frequency of its characters
    (which catches repetitions and small alphabets), and not words alone. A rough filter: it
    cannot tell a well-known sentence with a digit in it from a random string: generate it."""
    if len(secret) < MIN_SECRET_BYTES:
        return f"it is {len(secret)} bytes long, fewer than {MIN_SECRET_BYTES}"
    counts = Counter(secret).values()
    bits = -sum(n * math.log2(n / len(secret)) for n in counts)
    if bits < MIN_SECRET_BITS:
        return f"its characters carry about {int(bits)} bits, fewer than {MIN_SECRET_BITS}"
    if _words_only(secret):
        return "it is made of words only, like a phrase"
    return None


def _words_only(secret: bytes) -> bool:
    """Letters and separators only, each part cased as a word is (`horse`, `Horse`, `HORSE`):
    a random token of letters mixes cases inside its parts."""
    parts = re.split(b"[" + re.escape(_SEPARATORS) + b"]+", secret)
    return all(part.isalpha() and (part.islower() or part.isupper() or part.istitle())
               for part in parts if part)  # fmt: skip


def rotation_days_from(value: object) -> int:
    """A rotation period as a whole number of UTC days, 1 to `MAX_ROTATION_DAYS`."""
    days = value if isinstance(value, int) and not isinstance(value, bool) else None
    if isinstance(value, str) and value.strip().isdigit():
        days = int(value)
    if days is None or not 1 <= days <= MAX_ROTATION_DAYS:
        raise ValueError(
            f"the pseudonym rotation must be a whole number of UTC days from 1 to "
            f"{MAX_ROTATION_DAYS} ({ROTATION_DAYS_KEY}), not {value!r}: longer periods let one "
            f"pseudonym follow a user for longer"
        )
    return days


class UserHasher:
    """Turns user ids into rotating, keyed pseudonyms (16 hex characters).

    Raises ValueError for a weak secret (unless `allow_weak_secret`) and for a rotation that
    is not 1 to `MAX_ROTATION_DAYS` whole days: both are configuration errors, found at start.
    """

    def __init__(
        self,
        secret: str | bytes | None,
        *,
        rotation_days: int = 1,
        clock: Callable[[], float] | None = None,
        allow_weak_secret: bool = False,
        secret_date: dt.date | str | None = None,
    ):
        self.rotation_days = rotation_days_from(rotation_days)
        self.rotation = self.rotation_days * DAY
        self.ephemeral = not secret
        if not secret:
            # Still private, but each process then hashes differently: with several worker
            # processes one user counts once per process. Configure a shared secret.
            log.warning("%s is not configured: using a random per-process key", SECRET_KEY)
            secret = secrets.token_bytes(32)
        key = secret.encode() if isinstance(secret, str) else bytes(secret)
        weakness = secret_weakness(key)
        if weakness is not None:
            if not allow_weak_secret:
                raise ValueError(f"{SECRET_KEY} is refused: {weakness}; {HOW_TO_MAKE_ONE}")
            log.warning("%s is weak (%s), accepted as configured", SECRET_KEY, weakness)
        self._secret = key
        # With a date, (day, that day's secret): moved forward, never kept for an older day.
        self._ratchet: tuple[int, bytes] | None = None
        if secret_date is not None and not self.ephemeral:
            day = day_number(secret_date)
            if day % self.rotation_days:
                raise ValueError(
                    f"{SECRET_DATE_KEY} must be the first day of a rotation period (a day "
                    f"number divisible by {self.rotation_days}), not {secret_date}"
                )
            self._ratchet, self._secret = (day, key), b""
        self.clock = clock or wall_clock
        self._current: tuple[int, bytes] = (-1, b"")

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], *, clock: Callable[[], float] | None = None
    ) -> UserHasher:
        """Built from `STATSD_METRICS_USER_HASH_SECRET`, `..._ROTATION_DAYS` (or the older
        `..._ROTATION`, in seconds, when it is whole days) and `..._ALLOW_WEAK_SECRET`."""
        days: object = config.get(ROTATION_DAYS_KEY, 1)
        if ROTATION_DAYS_KEY not in config and ROTATION_KEY in config:
            seconds = float(config[ROTATION_KEY])
            days = int(seconds // DAY) if seconds % DAY == 0 else f"{seconds:g} seconds"
        weak = str(config.get(ALLOW_WEAK_KEY, "")).strip().lower() in ("1", "true", "yes", "on")
        return cls(config.get(SECRET_KEY), rotation_days=days, clock=clock,  # type: ignore[arg-type]
                   allow_weak_secret=weak, secret_date=config.get(SECRET_DATE_KEY))  # fmt: skip

    def period(self) -> int:
        """The number of the current rotation period, counted from the Unix epoch (UTC)."""
        return int(self.clock() // self.rotation)

    def _key(self, period: int) -> bytes:
        current = self._current  # one read: another thread may swap it meanwhile
        if current[0] != period:
            # Only the current period's key is kept: the previous one is forgotten here.
            base = self._secret if self._ratchet is None else self._day_secret(period)
            key = hmac.new(base, _CONTEXT + str(period).encode(), hashlib.sha256).digest()
            current = self._current = (period, key)
        return current[1]

    def _day_secret(self, period: int) -> bytes:
        """The ratchet's secret for the first day of `period`, moved forward to it (a clock
        behind the secret's date gets the secret's own day: there is no way back)."""
        day, secret = self._ratchet  # type: ignore[misc]
        first = period * self.rotation_days
        if first > day:
            secret = advance(secret, first - day)
            self._ratchet = (first, secret)
        return secret

    def pseudonym(self, user_id: object) -> str:
        """The user's pseudonym for the current period."""
        key = self._key(self.period())
        return hmac.new(key, str(user_id).encode(), hashlib.sha256).hexdigest()[:16]
