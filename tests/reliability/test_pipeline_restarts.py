"""`statsd-metrics up` when one of its parts dies: the supervisor says so, starts it again,
and the points sent meanwhile reach Whisper (the aggregator spools while Carbon is away)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import whisper

from support.pipeline import RunningUp, on_this_host, points, wait_for

from .conftest import Sender

pytestmark = pytest.mark.slow

HITS = on_this_host("stats_counts.restart.hits")  # `up` tags its series with the host


def part_pid(up: RunningUp, program: str) -> int:
    """The PID of the part of this `up` whose command line names `program`."""
    pid = up.process.pid
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        if program in Path(f"/proc/{child}/cmdline").read_text():
            return int(child)
    raise AssertionError(f"no {program} under `up`")


def in_whisper(up: RunningUp, start: int) -> float:
    path = up.whisper_file(HITS)
    if not path.exists():
        return 0.0
    return sum(v for v in whisper.fetch(str(path), start)[1] if v is not None)


def rendered(up: RunningUp, start: int) -> float:
    try:
        return sum(sum(points(s).values()) for s in up.render(HITS, start))
    except OSError:
        return -1.0


def test_killed_carbon_and_render_api_are_reported_restarted_and_nothing_is_lost(start_up):
    up = start_up("--flush-interval", "1").wait_ready()
    start = int(time.time()) - 1
    statsd = up.port("statsd")
    # Before the kill: every point in Whisper, so Carbon's own memory holds none of ours
    # (what a killed carbon-cache had in memory is its loss, not the pipeline's).
    before = Sender(statsd, b"restart.hits:1|c", limit=300)
    before.join(30)
    wait_for(lambda: in_whisper(up, start) == before.sent, what="phase one in Whisper")

    os.kill(part_pid(up, "statsd_metrics.graphite.carbon_cache"), signal.SIGKILL)
    during = Sender(statsd, b"restart.hits:1|c")  # while Carbon is away, and after
    wait_for(lambda: "carbon-cache a is back" in up.stderr(), what="carbon restarted")
    os.kill(part_pid(up, "gunicorn"), signal.SIGKILL)
    wait_for(lambda: "render API is back" in up.stderr(), what="render API restarted")
    sent = before.sent + during.stop()

    wait_for(lambda: rendered(up, start) == sent, what=f"{sent} hits read back", timeout=60)
    stderr = up.stderr()
    assert "carbon-cache a exited unexpectedly (exit status -9)" in stderr
    assert "render API exited unexpectedly (exit status -9)" in stderr
    assert "restarting it in 1 s" in stderr
    assert up.process.poll() is None  # the pipeline kept running
