"""The flush schedule: the reference's grid startup + n * interval, with a frozen clock."""

from __future__ import annotations

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
