"""Every live client of the process, for what concerns them all at once.

- At exit, each client is closed, which sends what it still buffers.
- After `fork()`, each client in the child forgets the parent's buffered lines, socket, locks
  and thread (a child must never send its parent's metrics, nor write into its TCP stream).
- The test recorder (`statsd_metrics.testing`) redirects every client, present and future, to
  itself while it is active.

Clients are held weakly: a buffered client stays alive through its flusher thread until it is
closed, so nothing it buffered is lost; an unbuffered one holds nothing worth keeping.
"""

from __future__ import annotations

import atexit
import os
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .client import Client

Capture = Callable[[str], None]

_lock = threading.Lock()
_clients: weakref.WeakSet[Client] = weakref.WeakSet()
_captures: list[Capture] = []


def register(client: Client) -> None:
    with _lock:
        _clients.add(client)
        client._redirect(_captures[-1] if _captures else None)


def unregister(client: Client) -> None:
    with _lock:
        _clients.discard(client)


def clients() -> list[Client]:
    with _lock:
        return list(_clients)


def push_capture(capture: Capture) -> None:
    """Send every client's lines to `capture` until `pop_capture`; captures nest."""
    with _lock:
        _captures.append(capture)
        for client in _clients:
            client._redirect(capture)


def pop_capture(capture: Capture) -> None:
    with _lock:
        if capture in _captures:
            _captures.remove(capture)
        active = _captures[-1] if _captures else None
        for client in _clients:
            client._redirect(active)


def _close_all() -> None:
    for client in clients():
        client.close()


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()
    for client in list(_clients):
        client._after_fork()


atexit.register(_close_all)
os.register_at_fork(after_in_child=_after_fork_in_child)
