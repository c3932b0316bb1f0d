"""The flush schedule: the reference's grid startup + n * interval, with a frozen clock."""

from __future__ import annotations

import asyncio

import pytest
from freezegun import freeze_time

from aggregator.config import from_mapping
from aggregator.daemon import Daemon

START = "2026-01-01 00:00:00.3"  # startup_time = round(now) = ...:00


@pytest.mark.parametrize(
    ("interval", "elapsed", "expected"),
    [
        (10, 0.0, 9.7),  # first flush one interval after the rounded start
        (10, 9.7, 10.0),  # called right after a flush: the next grid point
        (10, 14.0, 5.7),
        (10, 14.7, 15.0),  # past half an interval, the reference aims at the point after
        (0.2, 0.05, 0.25),
    ],
)
def test_next_flush_is_on_the_grid(tmp_path, interval, elapsed, expected):
    with freeze_time(START) as clock:
        daemon = Daemon(from_mapping({"flush_interval": interval, "spool_dir": str(tmp_path)}))
        clock.tick(elapsed)
        assert daemon.next_flush_in() == pytest.approx(expected)


def test_a_flush_is_stamped_when_its_interval_ends_not_when_its_computation_does(tmp_path):
    with freeze_time(START) as clock:
        daemon = Daemon(from_mapping({"flush_interval": 10, "spool_dir": str(tmp_path)}))
        clock.tick(9.7)  # the grid point
        merge = daemon.store.merge

        def slow_merge(*args):  # a busy host: the computation takes 3 s
            clock.tick(3)
            merge(*args)

        daemon.store.merge = slow_merge

        async def flush() -> tuple[list[bytes], int]:
            daemon.lock, daemon.deliveries = asyncio.Lock(), asyncio.Queue()
            await daemon.flush_once()
            return daemon.deliveries.get_nowait()

        payload, ts = asyncio.run(flush())
    end_of_interval = 1_767_225_610  # 2026-01-01 00:00:10
    assert ts == end_of_interval
    assert {line.rsplit(b" ", 1)[1] for line in b"".join(payload).splitlines()} == {
        str(end_of_interval).encode()
    }
