"""The aggregator stopped mid-traffic: SIGTERM delivers everything it was sent; SIGKILL loses
at most its current interval, and a restart replays what the spool held."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import pytest

from aggregator.graphite import unacknowledged
from tests.aggregator.conftest import free_port

from .conftest import Sender, stored, wait_until

pytestmark = pytest.mark.slow


def receivers(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_sigterm_mid_traffic_delivers_everything_sent_before_it(start_daemon, sink):
    tcp_port = free_port()
    d = start_daemon({"receivers": 1, "tcp_port": tcp_port}, flush=60)  # only a final flush
    sender = Sender(d.port, b"term.hits:1|c", pause=0.001)
    stream = socket.create_connection(("127.0.0.1", tcp_port))
    wait_until(lambda: '"term.hits"' in d.mgmt("counters"), what="traffic")
    # The receivers fall behind, so a backlog waits in the socket when SIGTERM arrives.
    stopped = receivers(d.process.pid)
    for pid in stopped:
        os.kill(pid, signal.SIGSTOP)
    d.send(*[b"term.hits:1|c"] * 2000)
    stream.sendall(b"term.tcp:1|c\n" * 5200)  # more than one read (64 KiB) of the stream
    wait_until(lambda: unacknowledged(stream) == 0, what="the TCP lines in the daemon's socket")
    before = sender.sent + 2000  # every one of these is in the socket or already read
    os.kill(d.process.pid, signal.SIGTERM)
    for pid in stopped:
        os.kill(pid, signal.SIGCONT)
    assert d.process.wait(30) == 0
    stream.close()
    sent = sender.stop() + 2000
    delivered = sum(stored(sink.lines, "stats_counts.term.hits").values())
    assert before <= delivered <= sent
    assert sum(stored(sink.lines, "stats_counts.term.tcp").values()) == 5200
