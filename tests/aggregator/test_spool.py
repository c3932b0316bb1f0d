"""The bounded on-disk spool and Carbon delivery through it."""

from __future__ import annotations

import asyncio
import os
import socket
import time

from aggregator.graphite import Carbon
from aggregator.spool import Spool

from .conftest import Sink, free_port, wait_until

NOW = int(time.time())


def payload(ts: int, n: int = 3) -> list[bytes]:
    return [f"stats.m{i} {i} {ts}\n".encode() for i in range(n)]


def test_replays_oldest_first_and_survives_a_restart(tmp_path):
    spool = Spool(tmp_path, 10_000, 3600)
    for ts in (NOW - 20, NOW - 10, NOW):
        spool.add(payload(ts), ts)
    again = Spool(tmp_path, 10_000, 3600)
    seen = []
    while (item := again.oldest()) is not None:
        entry, data = item
        seen.append(entry.ts)
        assert data == b"".join(payload(entry.ts))
        again.remove(entry)
    assert seen == [NOW - 20, NOW - 10, NOW]
    assert not list(tmp_path.iterdir())


def test_a_flush_half_written_by_a_killed_daemon_is_removed_and_counted(tmp_path):
    (tmp_path / "000000000007-1000.tmp").write_bytes(b"stats.a 1 1000\nstats.b 2 10")
    (tmp_path / "stray.tmp").write_bytes(b"")
    spool = Spool(tmp_path, 10_000, 3600)
    assert not list(tmp_path.glob("*.tmp"))
    assert (spool.dropped_payloads, spool.dropped_lines, len(spool)) == (2, 1, 0)


def test_byte_limit_drops_the_oldest_and_counts_lines(tmp_path):
    one = len(b"".join(payload(1)))
    spool = Spool(tmp_path, 2 * one, 3600)
    for ts in (1, 2, 3):
        spool.add(payload(ts), ts)
    assert [e.ts for e in spool.entries] == [2, 3]
    assert (spool.dropped_payloads, spool.dropped_lines) == (1, 3)
    spool.add(payload(4, n=100), 4)  # larger than the whole spool
    assert (spool.dropped_payloads, spool.dropped_lines) == (2, 103)


def test_age_limit(tmp_path):
    spool = Spool(tmp_path, 10_000, 60)
    spool.add(payload(1000), 1000)
    spool.add(payload(1100), 1100)
    spool.expire(now=1130)
    assert [e.ts for e in spool.entries] == [1100]
    assert spool.dropped_lines == 3


def test_unwritable_spool_counts_the_loss(tmp_path):
    directory = tmp_path / "spool"
    spool = Spool(directory, 10_000, 60)
    os.chmod(directory, 0o500)
    try:
        if os.access(directory, os.W_OK):  # root ignores modes: make writing fail another way
            directory.rmdir()
            directory.write_text("not a directory")
        spool.add(payload(5), 5)
    finally:
        if directory.is_dir():
            os.chmod(directory, 0o700)
    assert (spool.dropped_payloads, spool.dropped_lines) == (1, 3)


def test_carbon_down_spools_then_replays_in_order_with_original_timestamps(tmp_path):
    port = free_port()
    spool = Spool(tmp_path, 1_000_000, 3600)

    async def scenario() -> Sink:
        carbon = Carbon("127.0.0.1", port, 1.0, spool, 0)
        assert not await carbon.deliver(payload(NOW - 20), NOW - 20)
        carbon.retry_at = 0  # skip the backoff wait
        assert not await carbon.deliver(payload(NOW - 10), NOW - 10)
        assert len(spool) == 2
        assert carbon.stats["last_exception"] > 0
        sink = Sink(port)
        carbon.retry_at = 0
        assert await carbon.deliver(payload(NOW), NOW)
        await carbon.close()
        return sink

    sink = asyncio.run(scenario())
    wait_until(lambda: len(sink.lines) == 9, what="all lines at the sink")
    sink.close()
    stamps = [int(line.split()[2]) for line in sink.lines]
    assert stamps == [NOW - 20] * 3 + [NOW - 10] * 3 + [NOW] * 3
    assert len(spool) == 0


def test_carbon_closing_the_connection_is_noticed_before_the_next_write(tmp_path):
    sink = Sink()
    spool = Spool(tmp_path, 1_000_000, 3600)

    async def scenario() -> None:
        carbon = Carbon("127.0.0.1", sink.port, 1.0, spool, 0)
        assert await carbon.deliver(payload(1), 1)
        wait_until(lambda: len(sink.lines) == 3, what="first flush")
        sink.close()  # carbon goes away
        await asyncio.sleep(0.1)
        assert not await carbon.deliver(payload(2), 2)

    asyncio.run(scenario())
    assert [e.ts for e in spool.entries] == [2]


def test_a_carbon_that_accepts_and_never_reads_is_a_failed_delivery(tmp_path):
    # Never accepted, never read: the kernel still completes the handshake and takes in what
    # fits its small receive buffer; the rest waits unacknowledged in ours.
    with socket.create_server(("127.0.0.1", 0)) as hung:
        hung.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        spool = Spool(tmp_path, 10_000_000, 3600)

        async def scenario() -> bool:
            carbon = Carbon("127.0.0.1", hung.getsockname()[1], 0.5, spool, 0)
            return await carbon.deliver(payload(NOW, n=5000), NOW)  # ~90 KB

        assert not asyncio.run(scenario())
    assert [e.ts for e in spool.entries] == [NOW]
