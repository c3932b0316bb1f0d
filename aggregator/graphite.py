"""Delivery to Carbon: one persistent plaintext connection, reconnect with backoff, spool.

The reference opens a new connection per flush and loses the flush when that fails. Here a
flush that cannot be written (Carbon down, refusing, or slower than `graphite_timeout`) goes
to the spool, and spooled flushes are replayed in order, ahead of new ones, once Carbon
accepts writes again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from .spool import Spool

log = logging.getLogger("aggregator.graphite")

BACKOFF_START = 0.5
BACKOFF_MAX = 30.0


class Carbon:
    def __init__(self, host: str, port: int, timeout: float, spool: Spool, started: int):
        self.host, self.port, self.timeout = host, port, timeout
        self.spool = spool
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.retry_at = 0.0
        self.backoff = BACKOFF_START
        # what the reference reports as graphiteStats.*, about the previous write
        self.stats: dict[str, float] = {
            "last_exception": 0,
            "last_flush": started,
            "flush_time": 0,
            "flush_length": 0,
        }

    @property
    def enabled(self) -> bool:
        return bool(self.host)

    @property
    def connected(self) -> bool:
        return (
            self.writer is not None
            and not self.writer.is_closing()
            and not (self.reader is not None and self.reader.at_eof())
        )

    def _fail(self, why: object) -> None:
        if self.writer is not None:
            self.writer.transport.abort()  # never finish a half-written payload later
        self.reader = self.writer = None
        self.stats["last_exception"] = round(time.time())
        self.retry_at = time.monotonic() + self.backoff
        log.warning("carbon %s:%d: %s (next try in %.1fs)", self.host, self.port, why, self.backoff)
        self.backoff = min(self.backoff * 2, BACKOFF_MAX)

    async def _connect(self) -> bool:
        if self.connected:
            return True
        if self.writer is not None:  # Carbon closed it
            self._fail("connection closed by carbon")
        if time.monotonic() < self.retry_at:
            return False
        try:
            self.reader, self.writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port), self.timeout
            )
        except (OSError, TimeoutError) as exc:
            self._fail(f"cannot connect: {exc or 'timed out'}")
            return False
        log.info("connected to carbon %s:%d", self.host, self.port)
        self.backoff = BACKOFF_START
        return True

    async def _write(self, payload: list[bytes]) -> bool:
        """Chunk by chunk, so a large flush never sits twice in memory (transport buffer)."""
        assert self.writer is not None
        started = time.monotonic()
        try:
            for chunk in payload:
                self.writer.write(chunk)
                await asyncio.wait_for(self.writer.drain(), self.timeout)
        except (OSError, TimeoutError) as exc:
            self._fail(f"write failed: {exc or 'timed out'}")
            return False
        self.stats["flush_time"] = int((time.monotonic() - started) * 1000)
        self.stats["flush_length"] = sum(map(len, payload))
        self.stats["last_flush"] = round(time.time())
        return True

    async def deliver(self, payload: list[bytes], ts: int) -> bool:
        """Write spooled flushes, then this one; spool it if Carbon cannot take it now."""
        if not self.enabled:
            return True
        if await self._connect():
            while (spooled := self.spool.oldest()) is not None:
                entry, data = spooled
                if not await self._write([data]):
                    break
                self.spool.remove(entry)
            else:
                if await self._write(payload):
                    return True
        self.spool.add(payload, ts)
        return False

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError, TimeoutError):
                await asyncio.wait_for(self.writer.wait_closed(), self.timeout)
            self.reader = self.writer = None
