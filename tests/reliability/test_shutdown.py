"""The aggregator stopped mid-traffic: SIGTERM delivers everything it was sent; SIGKILL loses
at most its current interval, and a restart replays what the spool held."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import pytest

from aggregator.graphite import unacknowledged
from support.net import free_port
from tests.aggregator.conftest import run_aggregator

from .conftest import Sender, Sink, arrivals, stored, wait_until

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


def test_sigkill_then_restart_comes_back_and_replays_the_spool(start_daemon, tmp_path):
    carbon_port = free_port()  # Carbon is down: flushes wait in the spool
    d = start_daemon({"graphite_timeout": 1.0}, flush=1.0, graphite_port=carbon_port)
    spool = tmp_path / "spool0"
    d.send(b"kill.hits:5|c")
    wait_until(lambda: len(list(spool.glob("*.txt"))) >= 2, what="two flushes spooled")
    d.stop(signal.SIGKILL)
    waiting = sorted(spool.glob("*.txt"))
    # A kill in the middle of spooling a flush leaves a partial file behind.
    (spool / "000000000999-1.tmp").write_bytes(b"stats_counts.kill.hits 5 1\nstats_co")
    # Restarted on the same ports and spool, as systemd or `statsd-metrics up` would; its
    # receivers noticed their flusher's death and freed the port.
    wait_until(lambda: port_free(d.port), what="the UDP port freed")
    args = ["--config", str(d.config_path), "--port", str(d.port), "--mgmt-port",
            str(d.mgmt_port), "--graphite-port", str(carbon_port),
            "--flush-interval", "1"]  # fmt: skip
    d.process = run_aggregator(args, d.log_path)
    wait_until(lambda: answers(d), what="the restarted daemon")
    assert f"holds {len(waiting)} unsent flushes" in d.log()
    assert not list(spool.glob("*.tmp"))
    assert "spool.dropped_flushes: 1\n" in d.mgmt("stats")  # the half-written one, counted
    carbon = Sink(carbon_port)
    try:
        wait_until(lambda: not list(spool.glob("*.txt")), timeout=20, what="the spool replayed")
        d.send(b"kill.after:1|c")
        wait_until(lambda: stored(carbon.lines, "stats_counts.kill.after"), what="new flushes")
    finally:
        carbon.close()
    replayed = [int(p.stem.split("-")[1]) for p in waiting]
    assert arrivals(carbon.lines, "stats_counts.kill.hits")[: len(replayed)] == replayed
    assert sum(stored(carbon.lines, "stats_counts.kill.hits").values()) == 5


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def answers(d) -> bool:
    try:
        return d.http()[0] == 200
    except OSError:
        return False
