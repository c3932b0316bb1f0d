"""Process wiring: listeners, receiver processes, the flush schedule, delivery, signals.

The main process is the flusher. It owns the merged Store, asks every receiver for its
interval on the reference's flush grid, merges and computes in a worker thread (so the
management port keeps answering during a large flush) and queues the payload for delivery.
SIGTERM/SIGINT: a final hand-off from every receiver, a final flush delivered or spooled, exit.
SIGHUP: reload the config file (listener changes need a restart and are logged as such).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from array import array
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from . import config as configuration
from .config import Config, ConfigError
from .flush import Flush
from .graphite import Carbon
from .jsnumber import js_round
from .memory import release_memory
from .mgmt import Management
from .receive import (
    STOP_DRAIN,
    ListenError,
    Listeners,
    Sequence,
    open_listeners,
    run_receiver,
    tcp_listener,
)
from .spool import Spool
from .state import Interval, Store

log = logging.getLogger("aggregator")

_RESTART_KEYS = (
    "bind", "port", "bind_ipv6", "tcp_port", "unix_socket", "receive_buffer", "receivers",
    "mgmt_bind", "mgmt_port", "spool_dir",
)  # fmt: skip


@dataclass
class ReceiverHandle:
    index: int
    process: BaseProcess
    control: Connection
    asked: int = 0  # requests sent, not yet answered
    peeks: list[Interval] = field(default_factory=list)


# The flush's computation yields the CPU to the receivers: on a busy host (the application's
# processes, two receivers, two cores) a flush of 3 million values takes a second of CPU, and if
# it takes that second from the receivers, their socket overflows (seen in reliability/soak.py:
# every kernel drop fell during a flush). The flush has a whole interval to finish; a datagram
# that finds the socket full is lost for good. 10 gives it a tenth of a contested core.
FLUSH_NICENESS = 10


def lower_priority() -> None:
    """Run the calling thread (not the process: the receivers and the management port keep
    theirs) at FLUSH_NICENESS. On Linux, the nice value belongs to each thread."""
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), FLUSH_NICENESS)


class Daemon:
    def __init__(self, config: Config, overrides: dict | None = None) -> None:
        self.config = config
        self.overrides = overrides or {}
        self.started = round(time.time())
        self.health = config.health_status
        self.store = Store(max_names=config.max_metric_names, last_msg_seen=self.started)
        self.flush = Flush(config)
        self.flush.init_store(self.store)
        self.spool = Spool(config.spool_path, config.spool_max_bytes, config.spool_max_age)
        self.carbon = Carbon(
            config.graphite_host, config.graphite_port, config.graphite_timeout, self.spool,
            self.started,
        )  # fmt: skip
        self.listeners: Listeners | None = None
        self.sequence = Sequence()
        self.mgmt_socket: socket.socket | None = None
        self.receivers: list[ReceiverHandle] = []
        self.pending: list[Interval] = []  # handed-off intervals not merged yet
        self.stopping = False

    # -- start -------------------------------------------------------------------------

    def open(self) -> None:
        """Bind everything before any process starts, so a taken port stops the start."""
        c = self.config
        self.listeners = open_listeners(c)
        try:
            self.mgmt_socket = tcp_listener(c.mgmt_bind, c.mgmt_port)
        except ListenError:
            self.listeners.close()
            raise
        self.mgmt_socket.setblocking(False)
        for i in range(c.receivers):
            self.receivers.append(self._spawn(i))
        log.info(
            "listening: UDP %s:%d%s (%d receivers)%s%s; mgmt and HTTP health %s:%d; "
            "carbon %s; flush every %gs; spool %s",
            c.bind, c.port, f" and [{c.bind_ipv6}]:{c.port}" if c.bind_ipv6 else "",
            c.receivers, f"; TCP {c.bind}:{c.tcp_port}" if c.tcp_port else "",
            f"; Unix {c.unix_socket}" if c.unix_socket else "", c.mgmt_bind, c.mgmt_port,
            f"{c.graphite_host}:{c.graphite_port}" if c.graphite_host else "off",
            c.flush_interval, c.spool_path,
        )  # fmt: skip

    def _spawn(self, index: int) -> ReceiverHandle:
        assert self.listeners is not None
        parent, child = multiprocessing.Pipe()
        inherited = [parent, self.mgmt_socket, *(h.control for h in self.receivers)]
        process = multiprocessing.get_context("fork").Process(
            target=run_receiver,
            args=(self.listeners.for_receiver(index), child, self.config, self.sequence, inherited),
            name=f"statsd-aggregator-receiver-{index}",
            daemon=True,
        )
        process.start()
        child.close()
        return ReceiverHandle(index, process, parent)

    # -- receivers ---------------------------------------------------------------------

    def _watch(self, handle: ReceiverHandle) -> None:
        asyncio.get_running_loop().add_reader(handle.control.fileno(), self._read, handle)

    def _read(self, handle: ReceiverHandle) -> None:
        try:
            kind, interval = handle.control.recv()
        except (EOFError, OSError):
            self._lost(handle)
            return
        handle.asked -= 1
        if kind == "flush":
            self.pending.append(interval)
        else:
            handle.peeks.append(interval)

    def _lost(self, handle: ReceiverHandle) -> None:
        asyncio.get_running_loop().remove_reader(handle.control.fileno())
        handle.control.close()
        handle.process.join(1)
        if self.stopping:
            return
        log.error(
            "receiver %d exited (code %s); restarting it", handle.index, handle.process.exitcode
        )
        fresh = self._spawn(handle.index)
        self.receivers[handle.index] = fresh
        self._watch(fresh)

    async def _ask(self, action: str, arg: object = None) -> None:
        """Ask each receiver in turn (the others keep reading meanwhile); bounded waits."""
        deadline = time.monotonic() + max(1.0, self.config.flush_interval)
        if action == "stop":  # each first reads what is left in the sockets
            deadline += STOP_DRAIN * len(self.receivers)
        for handle in self.receivers:
            if handle.asked or handle.control.closed:
                continue
            try:
                handle.control.send((action, arg))
            except OSError:
                continue
            handle.asked += 1
            while handle.asked and time.monotonic() < deadline:
                await asyncio.sleep(0.002)
            if handle.asked:
                log.warning("receiver %d did not answer %r in time", handle.index, action)

    def _broadcast(self, action: str, arg: object) -> None:
        for handle in self.receivers:
            with contextlib.suppress(OSError):
                handle.control.send((action, arg))

    # -- flush -------------------------------------------------------------------------

    def next_flush_in(self, now: float | None = None) -> float:
        """Seconds to the next point of the reference's grid startup + n * interval."""
        now_ms = (time.time() if now is None else now) * 1000
        interval_ms = self.config.flush_interval * 1000
        attempt = js_round((now_ms - self.started * 1000) / interval_ms) + 1
        return max(0.0, (self.started * 1000 + attempt * interval_ms - now_ms) / 1000)

    def _merge_and_compute(self, intervals: list[Interval], ts: int) -> list[bytes]:
        lower_priority()
        ttl = self.config.gauges_max_ttl if self.config.deletes("gauges") else None
        self.store.merge(intervals, self.config.prefix_stats, ttl)
        return self.flush(self.store, ts).payload

    def _stamp(self, payload: list[bytes]) -> list[bytes]:
        now = round(time.time())
        stats = self.flush.graphite_stats(self.carbon.stats, now)
        stats += self.flush.spool_stats(len(self.spool), self.spool.bytes, now)
        return [*payload, stats.encode()]

    async def flush_once(self, final: bool = False) -> None:
        async with self.lock:
            # Stamped when the interval ends, as the reference does, not when its computation
            # does: that takes a varying while (seconds on a busy host), and a stamp that moved
            # with it could put two flushes in one Whisper slot, the later overwriting.
            ts = round(time.time())
            await self._ask("stop" if final else "flush")
            pending, self.pending = self.pending, []  # in the loop: late answers go to the next
            payload = await asyncio.to_thread(self._merge_and_compute, pending, ts)
        await self.deliveries.put((payload, ts))

    async def _deliver_loop(self) -> None:
        while True:
            payload, ts = await self.deliveries.get()
            try:
                await self.carbon.deliver(self._stamp(payload), ts)
            except Exception:  # delivery must never take the daemon down
                log.exception("delivery failed; spooling the flush of ts %d", ts)
                self.spool.add(self._stamp(payload), ts)
            del payload
            release_memory()
            self.deliveries.task_done()

    async def _flush_loop(self) -> None:
        while not self.stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_event.wait(), self.next_flush_in())
            if self.stopping:
                break
            try:
                await self.flush_once()
            except Exception:
                log.exception("flush failed")

    # -- run ---------------------------------------------------------------------------

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self.lock = asyncio.Lock()
        self.stop_event = asyncio.Event()
        self.deliveries: asyncio.Queue[tuple[list[bytes], int]] = asyncio.Queue()
        for handle in self.receivers:
            self._watch(handle)
        loop.add_signal_handler(signal.SIGTERM, self.stop)
        loop.add_signal_handler(signal.SIGINT, self.stop)
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        server = await asyncio.start_server(Management(self).serve, sock=self.mgmt_socket)
        deliver = asyncio.create_task(self._deliver_loop())
        await self._flush_loop()
        # final flush: every receiver hands off its last interval and exits
        server.close()
        await self.flush_once(final=True)
        await self.deliveries.join()
        deliver.cancel()
        await self.carbon.close()
        for handle in self.receivers:
            with contextlib.suppress(ValueError, OSError):
                loop.remove_reader(handle.control.fileno())
            handle.process.join(2)
            if handle.process.is_alive():
                handle.process.kill()
        if self.listeners is not None:
            self.listeners.close()
        log.info("stopped")

    def stop(self) -> None:
        if not self.stopping:
            log.info("stopping: final flush")
            self.stopping = True
            self.stop_event.set()

    def reload(self) -> None:
        if not self.config.source:
            log.warning("SIGHUP: no config file to reload")
            return
        try:
            new = configuration.load(self.config.source, self.overrides)
        except ConfigError as exc:
            log.error("SIGHUP: config not reloaded: %s", exc)
            return
        changed = [k for k in _RESTART_KEYS if getattr(new, k) != getattr(self.config, k)]
        if changed:
            log.warning("SIGHUP: %s only take effect after a restart", ", ".join(changed))
            new = dataclasses.replace(new, **{k: getattr(self.config, k) for k in changed})
        previous_ts = self.flush.previous_ts
        self.config = new
        self.flush = Flush(new)
        self.flush.previous_ts = previous_ts
        self.store.max_names = new.max_metric_names
        self.spool.max_bytes, self.spool.max_age = new.spool_max_bytes, new.spool_max_age
        self.carbon.host, self.carbon.port = new.graphite_host, new.graphite_port
        self.carbon.timeout = new.graphite_timeout
        self._broadcast("config", new)
        log.info("SIGHUP: config reloaded from %s", new.source)

    # -- what the management interface sees --------------------------------------------

    def status_lines(self) -> list[str]:
        now = round(time.time())
        s = self.carbon.stats
        lines = [
            f"uptime: {now - self.started}",
            f"messages.last_msg_seen: {now - round(self.store.last_msg_seen)}",
            f"messages.bad_lines_seen: {self.store.bad_lines_seen}",
            f"graphite.last_flush: {now - s['last_flush']}",
            f"graphite.last_exception: {now - s['last_exception']}",
            f"graphite.flush_time: {s['flush_time']}",
            f"graphite.flush_length: {s['flush_length']}",
        ]
        lines += [f"messages.rejected.{k}: {v}" for k, v in sorted(self.store.rejects.items())]
        lines += [
            f"spool.flushes: {len(self.spool)}",
            f"spool.bytes: {self.spool.bytes}",
            f"spool.dropped_flushes: {self.spool.dropped_payloads}",
            f"spool.dropped_lines: {self.spool.dropped_lines}",
            f"receivers.alive: {self._alive()}",
            f"daily.members: {self.store.daily.total}",
            f"daily.dropped_members: {self.store.daily.dropped}",
        ]
        return lines

    def _alive(self) -> int:
        return sum(h.process.is_alive() for h in self.receivers)

    def health_report(self) -> dict:
        alive = self._alive()
        return {
            "health": self.health if alive else "down",
            "uptime": round(time.time()) - self.started,
            "receivers_alive": alive,
            "spooled_flushes": len(self.spool),
            "last_flush": self.carbon.stats["last_flush"],
        }

    async def dump(self, kind: str) -> dict:
        """Live values: the merged store plus what the receivers hold right now."""
        async with self.lock:
            for handle in self.receivers:
                handle.peeks.clear()
            await self._ask("peek")
            view = Store(
                counters=dict(self.store.counters),
                timers={k: array("d", v) for k, v in self.store.timers.items()},
                gauges=dict(self.store.gauges),
                max_names=self.store.max_names,
            )
            live = [*self.pending, *(i for h in self.receivers for i in h.peeks)]
            view.merge(copy.deepcopy(live), self.config.prefix_stats, None)
        if kind == "timers":
            return {k: list(v) for k, v in view.timers.items()}
        return getattr(view, kind)

    async def delete(self, kind: str, pattern: str) -> list[str]:
        async with self.lock:
            deleted = self.store.drop(kind, pattern)
            for interval in self.pending:
                interval.drop(kind, [pattern])
            self._broadcast("delete", (kind, [pattern]))
        return deleted

    @property
    def mgmt_token(self) -> str:
        return self.config.mgmt_token

    def config_lines(self) -> list[str]:
        shown = asdict(self.config) | {"mgmt_token": "(set)" if self.mgmt_token else ""}
        return [f"{k}: {v}" for k, v in shown.items()]
