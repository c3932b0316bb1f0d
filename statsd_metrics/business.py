"""Business metrics: feature usage, domain events and active users.

Feature usage and domain events are counters named by the application (`features.sync`,
`events.player_updates`). Active users are counted without identifying anyone: each activity
sends the user's rotating keyed pseudonym (`privacy.UserHasher`) to a StatsD set, and the
aggregator reports only how many distinct members it saw per flush interval. Users who opted out
send nothing at all.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from statsd_metrics.binding import ClientBinding
from statsd_metrics.client import Client
from statsd_metrics.paths import segment
from statsd_metrics.privacy import DAY, UserHasher, wall_clock

ACTIVE = "users.active"
DAILY_ACTIVE = "users.daily_active"


class BusinessMetrics(ClientBinding):
    """`<prefix>.features.*`, `<prefix>.events.*`, `<prefix>.users.*`: see docs/metrics.md."""

    def __init__(
        self,
        client: Client | None = None,
        *,
        hasher: UserHasher | None = None,
        clock: Callable[[], float] | None = None,
        max_daily_users: int = 1_000_000,
    ):
        super().__init__(client)
        self.hasher = hasher or UserHasher(None, clock=clock)
        self.clock = clock or wall_clock
        self.max_daily_users = max_daily_users
        self._lock = threading.Lock()
        self._day = -1
        self._seen_today: set[int] = set()

    def feature_used(self, feature: str, count: int = 1) -> None:
        self.client.incr(f"features.{segment(feature)}", count)

    def event(self, name: str, count: int = 1) -> None:
        """A domain event happened `count` times (nothing is sent for zero)."""
        if count > 0:
            self.client.incr(f"events.{segment(name)}", count)

    def user_active(self, user_id: object, *, opted_out: bool = False) -> None:
        """Count this user as active now, unless they opted out.

        Sends the pseudonym to the `users.active` set (distinct users per flush interval) and,
        on the user's first activity of the UTC day in this process, one `users.daily_active`
        increment: summed over a day that is the number of daily active users (exact with one
        process, an upper bound when one user is served by several processes).
        """
        if opted_out:
            return
        self.client.set(ACTIVE, self.hasher.pseudonym(user_id))
        day = int(self.clock() // DAY)
        # Process memory only: a salted built-in hash, so not even raw ids are kept here.
        token = hash(str(user_id))
        with self._lock:
            if day != self._day:
                self._day, self._seen_today = day, set()
            # Past the memory bound, later newcomers of the day are no longer counted.
            first = token not in self._seen_today and len(self._seen_today) < self.max_daily_users
            if first:
                self._seen_today.add(token)
        if first:
            self.client.incr(DAILY_ACTIVE)
