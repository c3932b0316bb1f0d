"""Delivery to Carbon: one persistent plaintext connection, reconnect with backoff, spool.

The reference opens a new connection per flush and loses the flush when that fails. Here a
flush that cannot be written (Carbon down, refusing, or slower than `graphite_timeout`) goes
to the spool, and spooled flushes are replayed in order, ahead of new ones, once Carbon
accepts writes again.

A write counts as delivered only once Carbon's TCP stack has acknowledged every byte of it
(the socket's send queue is empty, SIOCOUTQ). Without that, a Carbon that accepts but stops
reading swallows flushes into our send buffer (megabytes: minutes or hours of flushes), which
are lost without a trace when that Carbon is then restarted. What Carbon's kernel has
acknowledged but Carbon never read (its receive buffer) is beyond any plaintext sender's sight.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import socket
import struct
import termios
import time

from .spool import Spool

log = logging.getLogger("aggregator.graphite")

BACKOFF_START = 0.5
BACKOFF_MAX = 30.0
ACK_POLL_MAX = 0.05  # seconds between looks at the send queue while Carbon acknowledges
_TCP_OPEN = (1, 8)  # TCP_ESTABLISHED, TCP_CLOSE_WAIT (Carbon closed after reading all)
_TCP_INFO = getattr(socket, "TCP_INFO", None)  # Linux


def unacknowledged(sock: socket.socket) -> int | None:
    """Bytes written to a TCP socket that the peer has not acknowledged yet; None once the
    connection is reset (a reset empties the send queue, which must not read as delivered).
    0 where the kernel cannot tell (not Linux): the write itself is then all we know."""
    if _TCP_INFO is None:
        return 0
    try:
        raw = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")  # = SIOCOUTQ
        state = sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, 1)[0]  # tcpi_state
    except (OSError, ValueError):  # ValueError: the transport closed the socket (fd -1)
        return None if sock.fileno() < 0 else 0
    # The state is read after the queue: a reset between the two reads still counts as one.
    return struct.unpack("i", raw)[0] if state in _TCP_OPEN else None


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
            self._fail(f"cannot connect: {str(exc) or 'timed out'}")
            return False
        log.info("connected to carbon %s:%d", self.host, self.port)
        return True

    async def _write(self, payload: list[bytes]) -> bool:
        """Chunk by chunk, so a large flush never sits twice in memory (transport buffer)."""
        assert self.writer is not None
        started = time.monotonic()
        try:
            for chunk in payload:
                self.writer.write(chunk)
                await asyncio.wait_for(self.writer.drain(), self.timeout)
            await asyncio.wait_for(self._acknowledged(), self.timeout)
        except (OSError, TimeoutError) as exc:
            self._fail(f"write failed: {str(exc) or 'timed out'}")
            return False
        self.stats["flush_time"] = int((time.monotonic() - started) * 1000)
        self.stats["flush_length"] = sum(map(len, payload))
        self.stats["last_flush"] = round(time.time())
        self.backoff = BACKOFF_START  # after a delivery, not a connect: a stalled Carbon accepts
        return True

    async def _acknowledged(self) -> None:
        """Until Carbon's TCP stack has acknowledged everything written (on loopback: at once;
        a Carbon that stopped reading: never, and the caller's timeout spools the flush)."""
        assert self.writer is not None
        sock = self.writer.get_extra_info("socket")
        pause = 0.001
        while (pending := unacknowledged(sock)) != 0:
            if pending is None or self.writer.is_closing():
                raise ConnectionResetError("connection reset by carbon")
            await asyncio.sleep(pause)
            pause = min(pause * 2, ACK_POLL_MAX)

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
