"""Short variants of the load scripts (reliability/soak.py and burst.py run for minutes):
more than the socket holds is lost where it happens and counted there, the aggregator
recovers, and a flush computes at a lower priority than the receivers read."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from aggregator.daemon import FLUSH_NICENESS

from .conftest import descendants, stored, wait_until

pytestmark = pytest.mark.slow


def socket_drops(port: int) -> int:
    """The kernel's drop count of the UDP socket bound to 127.0.0.1:`port` (/proc/net/udp)."""
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == f"0100007F:{port:04X}":
            return int(fields[12])
    raise AssertionError(f"no UDP socket on port {port}")


def received(sink, path: str = "stats_counts.statsd.packets_received") -> float:
    return sum(float(v) for flush in sink.flushes() for p, v, _ in flush if p == path)


def test_a_burst_beyond_the_socket_is_counted_by_the_kernel_and_the_aggregator_recovers(
    start_daemon, sink
):
    # A small receive buffer, and receivers held still: the burst cannot all fit.
    d = start_daemon({"receive_buffer": 65536}, flush=0.5)
    receivers = descendants(d.process.pid)[1:]
    for pid in receivers:
        os.kill(pid, signal.SIGSTOP)
    burst = 5000
    d.send(*[b"burst.hits:1|c"] * burst)
    for pid in receivers:
        os.kill(pid, signal.SIGCONT)
    dropped = socket_drops(d.port)
    assert dropped > 0  # the burst overflowed the socket
    wait_until(lambda: received(sink) == burst - dropped, what="the rest of the burst flushed")
    assert sum(stored(sink.lines, "stats_counts.burst.hits").values()) == burst - dropped
    # Recovered: the next traffic arrives whole, nothing more is dropped, health is up.
    d.send(*[b"after.hits:1|c"] * 100)  # fits the small buffer, whenever the receivers wake
    after = "stats_counts.after.hits"
    wait_until(lambda: sum(stored(sink.lines, after).values()) == 100, what="the next traffic")
    assert socket_drops(d.port) == dropped
    assert d.http()[0] == 200


def nice(pid: int, tid: int) -> int:
    stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[16])  # field 19, counted after the name


def test_a_flush_computes_at_a_lower_priority_than_the_receivers_read(start_daemon, sink):
    d = start_daemon()
    sink.next_flush()
    pid = d.process.pid
    threads = {int(t.name): nice(pid, int(t.name)) for t in Path(f"/proc/{pid}/task").iterdir()}
    assert threads[pid] == 0  # the main thread: hand-offs, delivery, management
    assert FLUSH_NICENESS in threads.values()  # the thread that computes flushes
    assert all(nice(r, r) == 0 for r in descendants(pid)[1:])  # the receivers
