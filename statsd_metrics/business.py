"""Business metrics: feature usage, domain events and active users.

Feature usage and domain events are counters named by the application (`features.sync`,
`events.player_updates`). Active users are counted without identifying anyone: each activity
adds the user's rotating keyed pseudonym (`privacy.UserHasher`) to the `users.active` set with
`Client.set_apart`, so it leaves the process apart from the request's other metrics, batched
with the other users of the interval. The aggregator reports how many distinct members it saw
per flush interval, and per UTC day (`daily_count`), which is exact over every process and host
that share it; no process keeps a count of its own. Users who opted out send nothing at all.
"""

from __future__ import annotations

from collections.abc import Callable

from statsd_metrics.binding import ClientBinding
from statsd_metrics.client import Client
from statsd_metrics.paths import segment
from statsd_metrics.privacy import UserHasher

ACTIVE = "users.active"


class BusinessMetrics(ClientBinding):
    """`<prefix>.features.*`, `<prefix>.events.*`, `<prefix>.users.*`: see docs/metrics.md."""

    def __init__(
        self,
        client: Client | None = None,
        *,
        hasher: UserHasher | None = None,
        clock: Callable[[], float] | None = None,
    ):
        super().__init__(client)
        self.hasher = hasher or UserHasher(None, clock=clock)

    def feature_used(self, feature: str, count: int = 1) -> None:
        self.client.incr(f"features.{segment(feature)}", count)

    def event(self, name: str, count: int = 1) -> None:
        """A domain event happened `count` times (nothing is sent for zero)."""
        if count > 0:
            self.client.incr(f"events.{segment(name)}", count)

    def user_active(self, user_id: object, *, opted_out: bool = False) -> None:
        """Count this user as active now, unless they opted out: their pseudonym of the day
        joins the `users.active` set, sent apart from every other metric."""
        if opted_out:
            return
        self.client.set_apart(ACTIVE, self.hasher.pseudonym(user_id))
