"""A level that many processes add to: requests in flight, connections in use.

An absolute gauge has one writer: with four gunicorn workers each sending "2 in flight", the
aggregator keeps whichever came last, not 8. So these levels travel as StatsD gauge *deltas*
(`+1`, `-1`), which the aggregator sums over every process of every host. Each process remembers
its own contribution and withdraws it when it exits, and a forked child starts from zero (the
contribution it inherited is its parent's).

Known limit: a process killed with SIGKILL cannot withdraw, and an aggregator restart forgets
the sum while processes keep their contributions; either leaves an offset until the affected
processes restart. Dashboards should treat these gauges as "about", not as exact accounting.
"""

from __future__ import annotations

import atexit
import os
import threading
import weakref

from statsd_metrics.binding import ClientBinding
from statsd_metrics.client import Client

_live: weakref.WeakSet[SharedGauge] = weakref.WeakSet()


class SharedGauge(ClientBinding):
    def __init__(self, client: Client | None, name: str):
        super().__init__(client)
        self.name = name
        self.value = 0  # this process's contribution
        self._lock = threading.Lock()
        _live.add(self)

    def add(self, delta: int) -> None:
        if delta:
            with self._lock:
                self.value += delta
            self.client.gauge(self.name, delta, delta=True)

    def set(self, value: int) -> None:
        """Make this process's contribution `value` (sends the difference)."""
        with self._lock:
            delta, self.value = value - self.value, value
        if delta:
            self.client.gauge(self.name, delta, delta=True)

    def withdraw(self) -> None:
        """Take this process's contribution back out of the shared sum."""
        with self._lock:
            value, self.value = self.value, 0
        if value:
            self.client.gauge(self.name, -value, delta=True)


def _withdraw_all() -> None:
    for gauge in list(_live):
        gauge.withdraw()


def _forget_inherited() -> None:
    for gauge in list(_live):
        gauge._lock = threading.Lock()
        gauge.value = 0


atexit.register(_withdraw_all)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_inherited)
