"""The client's background thread: flushes the buffer and re-resolves the aggregator's address.

It calls `tick`, which does one round of work and returns how long to wait before the next. It
is a daemon thread, so it never keeps a process alive (the exit hook flushes instead). A fork
copies no thread, so the child starts its own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class Worker:
    def __init__(self, tick: Callable[[], float], name: str) -> None:
        self._tick = tick
        self._name = name
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """Ask the thread to finish its current round and end; wait for it at most `timeout`."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping.set()
        if thread is not threading.current_thread():
            thread.join(timeout)

    def after_fork(self) -> None:
        if self._thread is not None:
            self.start()

    def _run(self) -> None:
        stopping = self._stopping
        while not stopping.wait(self._tick()):
            pass
