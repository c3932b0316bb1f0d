"""A level that many processes add to: requests in flight, connections in use.

An absolute gauge has one writer: with four gunicorn workers each sending "2 in flight", the
aggregator keeps whichever came last, not 8. So these levels travel as StatsD gauge *deltas*
(`+3`, `-1`), which the aggregator sums over every process of every host.

Changing a level costs no I/O: `add()` only moves this process's `level` (it runs on every
request, so it must be cheap). A reporter thread sends each gauge's change since the last
report every `REPORT_INTERVAL` seconds, nothing when nothing changed. A gauge is a sampled
value anyway (the aggregator keeps the last one per flush), so a second of delay changes no
dashboard, and it saves two wire lines per request.

Each process withdraws what it reported when it exits, and a forked child starts from zero (the
share it inherited is its parent's). Known limit: a process killed with SIGKILL cannot withdraw,
and an aggregator restart forgets the sum while processes keep their shares; either leaves an
offset until the affected processes restart. Read these gauges as "about", not as accounting.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import weakref

from statsd_metrics.binding import ClientBinding
from statsd_metrics.client import Client

REPORT_INTERVAL = 1.0

_live: weakref.WeakSet[SharedGauge] = weakref.WeakSet()
_reporter: threading.Thread | None = None
_reporter_lock = threading.Lock()
_stopping = threading.Event()


class SharedGauge(ClientBinding):
    def __init__(self, client: Client | None, name: str):
        super().__init__(client)
        self.name = name
        self.level = 0  # this process's share now
        self.value = 0  # the share the aggregator has been told about
        self._lock = threading.Lock()
        _live.add(self)

    def add(self, delta: int) -> None:
        with self._lock:
            self.level += delta
        if _reporter is None:
            _start_reporter()

    def set(self, level: int) -> None:
        with self._lock:
            self.level = level
        if _reporter is None:
            _start_reporter()

    def report(self) -> None:
        """Send the change since the last report, if any."""
        with self._lock:
            delta, self.value = self.level - self.value, self.level
        if delta:
            self.client.gauge(self.name, delta, delta=True)

    def withdraw(self) -> None:
        """Take this process's reported share back out of the shared sum."""
        with self._lock:
            value, self.value, self.level = self.value, 0, 0
        if value:
            self.client.gauge(self.name, -value, delta=True)


def report_all() -> None:
    for gauge in list(_live):
        gauge.report()


def _report_loop() -> None:
    while not _stopping.wait(REPORT_INTERVAL):
        with contextlib.suppress(Exception):  # nothing may end the reporting
            report_all()


def _start_reporter() -> None:
    global _reporter
    with _reporter_lock:
        if _reporter is None:
            _reporter = threading.Thread(target=_report_loop, name="statsd-shared-gauges",
                                         daemon=True)  # fmt: skip
            _reporter.start()


def _withdraw_all() -> None:
    _stopping.set()
    for gauge in list(_live):
        gauge.withdraw()


def _forget_inherited() -> None:
    global _reporter, _reporter_lock
    _reporter, _reporter_lock = None, threading.Lock()  # no thread survives a fork
    for gauge in list(_live):
        gauge._lock = threading.Lock()
        gauge.level = gauge.value = 0


atexit.register(_withdraw_all)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_inherited)
