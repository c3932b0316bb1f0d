"""Carbon goes away, or stops reading: the aggregator notices, spools, and loses nothing.

A fake Carbon (a real TCP listener in this process) stands in for carbon-cache, so the test can
make it vanish, come back, or hang; points are counted as Whisper keeps them (one value per
timestamp), so a flush replayed twice counts once.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import Sender, Sink, StalledCarbon, arrivals, stored, wait_until

pytestmark = pytest.mark.slow

HITS = "stats_counts.fault.hits"


def spooled(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.txt"))


def test_carbon_down_for_several_flushes_then_back_every_point_arrives_in_order(
    start_daemon, sink, tmp_path
):
    d = start_daemon({"graphite_timeout": 1.0}, flush=1.0)
    spool = tmp_path / "spool0"
    sender = Sender(d.port, b"fault.hits:1|c")
    wait_until(lambda: stored(sink.lines, HITS), what="a first flush with traffic")
    sink.close()  # Carbon goes away for several flushes
    wait_until(lambda: len(spooled(spool)) >= 4, timeout=20, what="four flushes spooled")
    waiting = [int(path.stem.split("-")[1]) for path in spooled(spool)]  # <seq>-<ts>.txt
    back = Sink(sink.port)
    try:
        sent = sender.stop()
        # After the traffic stops, an idle flush (0) follows the last hits, and the spool empties.
        wait_until(
            lambda: 0.0 in stored(back.lines, HITS).values() and not spooled(spool),
            timeout=30,
            what="the spool replayed and an idle flush",
        )
    finally:
        back.close()
    lines = sink.lines + back.lines
    assert sum(stored(lines, HITS).values()) == sent
    order = arrivals(lines, HITS)
    assert order == sorted(order)  # in order, across the outage
    # The outage's flushes come first, with their original timestamps.
    assert arrivals(back.lines, HITS)[: len(waiting)] == waiting
    assert "Traceback" not in d.log()


def test_a_carbon_that_stops_reading_is_noticed_and_nothing_it_did_not_acknowledge_is_lost(
    start_daemon, tmp_path
):
    hits = "stats_counts.stall.hits"
    stalled = StalledCarbon()
    d = start_daemon({"graphite_timeout": 1.0}, flush=1.0, graphite_port=stalled.port)
    # 300 counters (reported every flush, 0 when idle) make each flush larger than what the
    # stalled Carbon's kernel takes in, so no flush can hide whole in its receive buffer.
    d.send(b"\n".join(b"filler.%d:1|c" % i for i in range(300)))
    sender = Sender(d.port, b"stall.hits:1|c")
    wait_until(lambda: "spool.flushes: 0\n" not in d.mgmt("stats"), what="a flush spooled")
    assert "write failed: timed out" in d.log()  # noticed within graphite_timeout
    assert d.http()[0] == 200  # still healthy: receiving and flushing go on
    sent = sender.stop()
    wait_until(lambda: '"stall.hits": 0' in d.mgmt("counters"), what="the last hits flushed")

    # The hung Carbon dies: what its kernel acknowledged and it never read is its loss, and
    # it is bounded by its receive buffers; everything else must come back from the spool.
    stalled.stop_accepting()  # no new connection can take more in while we look
    unread = stalled.unread()
    assert sum(len(line) + 1 for line in unread) <= stalled.receive_buffers()
    stalled.die()
    carbon = Sink(stalled.port)
    try:
        wait_until(
            lambda: 0.0 in stored(carbon.lines, hits).values() and not spooled(tmp_path / "spool0"),
            timeout=40,
            what="the spool replayed to a healthy Carbon",
        )
    finally:
        carbon.close()
    assert sum(stored(unread + carbon.lines, hits).values()) == sent
    assert "Traceback" not in d.log()
