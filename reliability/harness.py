"""What the reliability scripts share: a real aggregator, a fake Carbon that reports each
flush, memory of a process tree, and the kernel's UDP drop counters.

The load generator, its workloads and the memory sampler are benchmarks/aggregator_throughput.py's
own, so the figures here are measured the way docs/aggregator.md's are. Everything on
127.0.0.1 and free ports; processes are stopped by PID.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from statsd_metrics.supervisor import terminate

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from aggregator_throughput import (  # noqa: E402  (a script beside ours, not a package)
    MemorySampler,
    Workload,
    _children,
    _kib,
    build,
    free_port,
    loadgen,
    mix_workload,
)

__all__ = ["Aggregator", "Carbon", "Workload", "build", "kernel_udp", "loadgen", "mix_workload"]

# The per-flush series a Carbon stand-in reports (internal ones: few lines per flush).
_INTERNAL = re.compile(
    rb"^(statsd\.numStats|stats\.statsd\.(?:graphiteStats\.\w+|processing_time)|"
    rb"stats\.gauges\.statsd\.timestamp_lag|stats_counts\.statsd\.\w+) (\S+) (\d+)$",
    re.M,
)
_COUNTERS = re.compile(rb"^stats_counts\.bench\.\S* (\S+) ", re.M)
_TIMERS = re.compile(rb"^stats\.timers\.bench\.\S*\.count (\S+) ", re.M)


def _carbon_connection(conn: socket.socket, flushes, totals, lock) -> None:
    buffered, current = b"", {}
    while data := conn.recv(1 << 20):
        buffered += data
        cut = buffered.rfind(b"\n") + 1
        if not cut:
            continue
        chunk, buffered = buffered[:cut], buffered[cut:]
        counters = sum(float(v) for v in _COUNTERS.findall(chunk))
        timers = sum(float(v) for v in _TIMERS.findall(chunk))
        with lock:
            totals[0] += counters
            totals[1] += timers
        for name, value, ts in _INTERNAL.findall(chunk):
            current[name.decode()] = float(value)
            current["ts"] = int(ts)
            if name.endswith(b"flush_length"):  # the last line of a flush
                current["received_at"] = time.time()
                flushes.put(current)
                current = {}
    conn.close()


def _carbon_main(port: int, flushes, totals, ready) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    lock = threading.Lock()
    server = socket.create_server(("127.0.0.1", port))
    ready.set()
    while True:
        conn, _ = server.accept()
        args = (conn, flushes, totals, lock)
        threading.Thread(target=_carbon_connection, args=args, daemon=True).start()


class Carbon:
    """A fake Carbon in its own process (it must not take CPU from the receivers' share):
    the sums of the bench counters' counts and timers' counts, and each flush's internal
    series ({"statsd.numStats": ..., "stats.statsd.graphiteStats.flush_time": ...})."""

    def __init__(self) -> None:
        self.port = free_port()
        self.queue: multiprocessing.Queue = multiprocessing.Queue()
        self.totals = multiprocessing.Array("d", 2)
        self.flushes: list[dict] = []
        ready = multiprocessing.Event()
        self.process = multiprocessing.Process(
            target=_carbon_main, args=(self.port, self.queue, self.totals, ready), daemon=True
        )
        self.process.start()
        ready.wait(10)

    def poll(self) -> list[dict]:
        while not self.queue.empty():
            self.flushes.append(self.queue.get())
        return self.flushes

    def received(self) -> dict[str, float]:
        """Totals so far: lines the aggregator received, bench counters and timer counts."""
        lines = sum(f.get("stats_counts.statsd.metrics_received", 0) for f in self.poll())
        return {"lines": lines, "counters": self.totals[0], "timers": self.totals[1]}

    def wait_flushes(self, n: int, timeout: float = 120.0) -> None:
        seen = len(self.poll())
        deadline = time.monotonic() + timeout
        while len(self.poll()) < seen + n:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no {n} flushes in {timeout} s")
            time.sleep(0.1)

    def stop(self) -> None:
        self.process.kill()
        self.process.join()


@dataclass
class Aggregator:
    """`python -m aggregator` with `config`, writing to `carbon`; stopped by PID."""

    carbon: Carbon
    config: dict = field(default_factory=dict)
    workdir: Path = Path("/tmp")

    def __post_init__(self) -> None:
        self.port, self.mgmt_port = free_port(socket.SOCK_DGRAM), free_port()
        conf = {"spool_dir": str(self.workdir / "spool"), "log_level": "warning", **self.config}
        path = self.workdir / f"aggregator-{self.port}.json"
        path.write_text(json.dumps(conf))
        self.log_path = self.workdir / f"aggregator-{self.port}.log"
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "aggregator", "--config", str(path), "--port",
                 str(self.port), "--mgmt-port", str(self.mgmt_port), "--graphite-port",
                 str(self.carbon.port), "--flush-interval", str(conf.get("flush_interval", 10))],
                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while self.health() != 200:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"aggregator did not start: {self.log_path.read_text()}")
            time.sleep(0.1)
        self.memory = MemorySampler(self.process.pid)

    def mgmt(self, command: str) -> str:
        with socket.create_connection(("127.0.0.1", self.mgmt_port), timeout=30) as s:
            s.sendall(command.encode() + b"\n")
            s.shutdown(socket.SHUT_WR)
            return b"".join(iter(lambda: s.recv(65536), b"")).decode()

    def stats(self) -> dict[str, int]:
        pairs = (line.partition(": ") for line in self.mgmt("stats").splitlines())
        return {key: int(value) for key, _, value in pairs if value.lstrip("-").isdigit()}

    def health(self) -> int | None:
        try:
            with socket.create_connection(("127.0.0.1", self.mgmt_port), timeout=5) as s:
                s.sendall(b"GET /health HTTP/1.0\r\n\r\n")
                return int(s.recv(100).split(b" ")[1])
        except (OSError, IndexError, ValueError):
            return None

    def pss_mib(self) -> float:
        """The process tree's PSS now (shared pages counted once), MiB."""
        pids = [self.process.pid, *_children(self.process.pid)]
        return sum(_kib(f"/proc/{p}/smaps_rollup", "Pss:") for p in pids) / 1024

    def socket_drops(self) -> int:
        """Datagrams the kernel dropped on this aggregator's UDP socket (its buffer full):
        the `drops` column of /proc/net/udp, for this socket alone."""
        inodes = set()
        for fd in Path(f"/proc/{self.process.pid}/fd").glob("*"):
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
        for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes and int(fields[1].split(":")[1], 16) == self.port:
                return int(fields[12])
        return 0

    def offer(self, workload: Workload, rate_dps: float, seconds: float) -> tuple[int, float]:
        """Send `workload`'s datagrams at `rate_dps` for `seconds` (C generator, 8 sockets);
        returns (datagrams sent, seconds taken)."""
        out = subprocess.run(
            [str(loadgen()), str(self.port), str(rate_dps), str(seconds), "8", str(workload.path)],
            check=True, capture_output=True, text=True,
        ).stdout.split()  # fmt: skip
        return int(out[0]), float(out[1])

    def stop(self) -> None:
        self.memory.stopped.set()
        terminate(self.process, 60)


def kernel_udp() -> dict[str, int]:
    """The machine-wide UDP counters of /proc/net/snmp (every process's sockets: other
    engineers' too, so read beside the per-socket `socket_drops`)."""
    rows = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines()]
    head, values = [r for r in rows if r[0] == "Udp:"][:2]
    return dict(zip(head[1:], map(int, values[1:]), strict=True))


def conditions() -> str:
    """What else the machine was doing: the measurement's context, printed with it."""
    load = os.getloadavg()
    return f"{os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
