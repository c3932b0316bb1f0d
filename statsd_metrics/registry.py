"""Every live client of the process, for what concerns them all at once.

- At exit, each client is closed, which sends what it still buffers.
- After `fork()`, each client in the child forgets the parent's buffered lines, socket, locks
  and thread (a child must never send its parent's metrics, nor write into its TCP stream).
- The test recorder (`statsd_metrics.testing`) redirects every client, present and future, to
  itself while it is active.

Clients are held weakly: a buffered client stays alive through its flusher thread until it is
closed, so nothing it buffered is lost; an unbuffered one holds nothing worth keeping.

The registry knows a client only as a `Member`: three public methods, so the client's insides
can change without this module following them.
"""

from __future__ import annotations

import atexit
import os
import threading
import weakref
from collections.abc import Callable
from typing import Protocol

Capture = Callable[[str], None]


class Member(Protocol):
    """What the registry asks of a client (`statsd_metrics.Client` is one)."""

    def redirect(self, capture: Capture | None) -> None:
        """From now on, write lines to `capture`; with None, where the client's settings say."""

    def after_fork(self) -> None:
        """In a forked child: forget the parent's buffered lines, socket, locks and thread."""

    def close(self) -> None:
        """Send what is buffered and release everything."""


_lock = threading.Lock()
_clients: weakref.WeakSet[Member] = weakref.WeakSet()
_captures: list[Capture] = []


def register(client: Member) -> None:
    with _lock:
        _clients.add(client)
        client.redirect(_captures[-1] if _captures else None)


def unregister(client: Member) -> None:
    with _lock:
        _clients.discard(client)


def clients() -> list[Member]:
    with _lock:
        return list(_clients)


def push_capture(capture: Capture) -> None:
    """Send every client's lines to `capture` until `pop_capture`; captures nest."""
    with _lock:
        _captures.append(capture)
        for client in _clients:
            client.redirect(capture)


def pop_capture(capture: Capture) -> None:
    with _lock:
        if capture in _captures:
            _captures.remove(capture)
        active = _captures[-1] if _captures else None
        for client in _clients:
            client.redirect(active)


def _close_all() -> None:
    for client in clients():
        client.close()


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()
    for client in list(_clients):
        client.after_fork()


atexit.register(_close_all)
os.register_at_fork(after_in_child=_after_fork_in_child)
