"""A periodic collector of process resources: CPU, memory, threads, open files, GC, uptime.

Levels are absolute gauges under `<prefix>.process.<host>.*`, so there must be one collector
per host (or per `host` name you give it): run it in the application's main process, or, under
a pre-fork server such as gunicorn, in the master with `children=True`, which sums the master
and all its workers. GC counts are the collector's own process (the interpreter offers no view
into another process's GC). Needs `psutil` (`pip install statsd-metrics[process]`).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import socket
import threading
import time
from collections.abc import Callable

import psutil

from statsd_metrics.binding import ClientBinding
from statsd_metrics.client import Client
from statsd_metrics.paths import segment

log = logging.getLogger(__name__)


def default_host() -> str:
    return segment(socket.gethostname().split(".")[0], fallback="localhost")


class ProcessCollector(ClientBinding):
    """Samples every `interval` seconds from a daemon thread; `collect()` takes one sample."""

    def __init__(
        self,
        client: Client | None = None,
        *,
        interval: float = 10.0,
        host: str | None = None,
        children: bool = False,
        process: psutil.Process | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        super().__init__(client)
        self.interval = interval
        self.children = children
        self.root = process or psutil.Process()
        self.clock = clock
        self.base = f"process.{segment(host) if host else default_host()}"
        self._gc = [dict(s) for s in gc.get_stats()]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # (pid, create time) -> CPU seconds at the last sample: the baseline of the next one.
        self._cpu = self._cpu_seconds(self._processes())
        self._cpu_at = clock()

    # -- sampling -------------------------------------------------------------------------------
    def _processes(self) -> list[psutil.Process]:
        if not self.children:
            return [self.root]
        try:
            return [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            return [self.root]

    @staticmethod
    def _cpu_seconds(processes: list[psutil.Process]) -> dict[tuple[int, float], float]:
        seconds = {}
        for p in processes:
            try:
                with p.oneshot():
                    t = p.cpu_times()
                    seconds[(p.pid, p.create_time())] = t.user + t.system
            except psutil.Error:
                continue  # exited meanwhile
        return seconds

    def collect(self) -> None:
        """Take one sample and send it."""
        processes = self._processes()
        now = self.clock()
        cpu = self._cpu_seconds(processes)
        # CPU used since the last sample by the processes alive now (new ones: since they began).
        used = sum(max(0.0, s - self._cpu.get(key, 0.0)) for key, s in cpu.items())
        elapsed = now - self._cpu_at
        self._cpu, self._cpu_at = cpu, now
        rss = threads = files = 0
        for p in processes:
            try:
                with p.oneshot():
                    rss += p.memory_info().rss
                    threads += p.num_threads()
                    files += p.num_fds() if hasattr(p, "num_fds") else p.num_handles()
            except psutil.Error:
                continue
        b, c = self.base, self.client
        if elapsed > 0:
            c.gauge(f"{b}.cpu.percent", round(100.0 * used / elapsed, 2))
        c.gauge(f"{b}.memory.rss", rss)
        c.gauge(f"{b}.threads", threads)
        c.gauge(f"{b}.open_files", files)
        c.gauge(f"{b}.processes", len(cpu))
        with contextlib.suppress(psutil.Error):
            c.gauge(f"{b}.uptime", round(time.time() - self.root.create_time(), 1))
        self._collect_gc()

    def _collect_gc(self) -> None:
        stats = gc.get_stats()
        uncollectable = 0
        for generation, (now, before) in enumerate(zip(stats, self._gc, strict=True)):
            for field in ("collections", "collected"):
                delta = now[field] - before[field]
                if delta > 0:
                    self.client.incr(f"{self.base}.gc.gen{generation}.{field}", delta)
            uncollectable += now["uncollectable"] - before["uncollectable"]
        if uncollectable > 0:
            self.client.incr(f"{self.base}.gc.uncollectable", uncollectable)
        self._gc = [dict(s) for s in stats]

    # -- the thread -----------------------------------------------------------------------------
    def start(self) -> ProcessCollector:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name="statsd-process-collector", daemon=True
            )
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.collect()
            except Exception:  # never let metrics kill the thread, nor reach the app
                log.debug("process metrics sample failed", exc_info=True)
