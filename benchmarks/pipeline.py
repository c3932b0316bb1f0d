"""How many series per flush the local pipeline keeps up with, and what bounds it.

Runs `statsd-metrics up` with the shipped configuration and feeds Carbon what an aggregator
flush is: N series, one point each, all with the flush's timestamp, over one TCP connection,
every flush interval (10 s, the default). Each step runs on a fresh pipeline: one flush
creates the N series' Whisper files (as a deploy's first flush does), then FLUSHES flushes follow
on schedule. A step keeps up when
  * no create is dropped: N Whisper files, and every series has the last flush's point;
  * the cache does not grow: every flush is in Whisper (checked on a random sample of the
    series) within one flush interval of being sent, plus SLACK for carbon's idle sleep (its
    writer sleeps 1 s whenever its cache is empty) and the transfer.
N doubles until a step fails, then one step halfway back; the figure is the largest N that
kept up. What bounds it is read off carbon-cache's share of a core and the machine's CPU and
I/O pressure (/proc/pressure) during the failing step.

The peer, in the same run: the same pipeline with carbon's sample write limits
(MAX_UPDATES_PER_SECOND = 500, MAX_CREATES_PER_MINUTE = 50), which our carbon.conf raises.

Disk: a Whisper file is 760 KiB at a 10 s interval, allocated whole at create by the shipped
config; a step of 128,000 series takes 93 GiB. So by default they are created sparse
(WHISPER_SPARSE_CREATE), the one setting that differs: it changes what a create costs on disk,
not what an update does, and creates are timed apart. --allocate keeps the shipped allocation.

    .venv/bin/python benchmarks/pipeline.py [--max-series 128000] [--allocate]
(about 10 minutes; the machine's other load moves the figure, the ratio to the peer less so)
"""

from __future__ import annotations

import argparse
import random
import shutil
import socket
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

# The helpers that start `up` and read it back are the tests' (tests/support/).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import whisper

from statsd_metrics.graphite.config import statsd_retentions
from statsd_metrics.supervisor.layout import HOST
from support.pipeline import RunningUp, graphite_config

INTERVAL = 10
FLUSHES = 6
SAMPLE = 300
SLACK = 1.5  # the writer's idle sleep (1 s), the transfer and the polling
CREATE_TIMEOUT = 180.0
FINAL_GRACE = 15.0
STALL = 20.0


@dataclass
class Usage:
    """carbon-cache's CPU seconds and the machine's stall time (µs), read at one moment."""

    carbon_cpu: float
    cpu_stall: int
    io_stall: int

    @classmethod
    def read(cls, up: RunningUp) -> Usage:
        pid = int((up.data_dir / "carbon-a" / "carbon-cache-a.pid").read_text())
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return cls(
            carbon_cpu=(int(fields[11]) + int(fields[12])) / 100,  # utime + stime, ticks
            cpu_stall=_stall("cpu"),
            io_stall=_stall("io"),
        )


def _stall(resource: str) -> int:
    """Total µs some task waited for the resource (Linux PSI), 0 where unavailable."""
    try:
        some = Path(f"/proc/pressure/{resource}").read_text().splitlines()[0]
    except OSError:
        return 0
    return int(some.rsplit("total=", 1)[1])


@dataclass
class Step:
    series: int
    create_seconds: float | None = None
    lags: list[float | None] = field(default_factory=list)
    files: int = 0
    complete: int = 0
    seconds: float = 0.0
    carbon_cpu: float = 0.0  # share of one core
    cpu_pressure: float = 0.0  # share of the time some task waited for a CPU
    io_pressure: float = 0.0

    @property
    def kept_up(self) -> bool:
        return (
            self.files == self.series
            and self.complete == self.series
            and len(self.lags) == FLUSHES
            and all(lag is not None and lag <= INTERVAL + SLACK for lag in self.lags)
        )

    def describe(self) -> str:
        lags = ", ".join("-" if lag is None else f"{lag:.1f}" for lag in self.lags)
        creates = "-" if self.create_seconds is None else f"{self.create_seconds:.1f} s"
        return (
            f"{self.series:>6} series: creates {creates}; lag per flush [{lags}] s; files "
            f"{self.files}, complete {self.complete}; carbon {self.carbon_cpu:.0%} of a core; "
            f"machine CPU/IO pressure {self.cpu_pressure:.0%}/{self.io_pressure:.0%}: "
            + ("keeps up" if self.kept_up else "falls behind")
        )


def names(n: int) -> list[str]:
    return [f"bench.group{i // 1000}.series{i}" for i in range(n)]


def has_point(up: RunningUp, metric: str, ts: int) -> bool:
    """Whether Whisper holds the point at ts (a slot boundary)."""
    path = up.whisper_file(metric)
    if not path.exists():
        return False
    try:
        _, values = whisper.fetch(str(path), ts - 1, ts)
    except (whisper.WhisperException, OSError):
        return False
    return bool(values) and values[0] is not None


def wait_written(up: RunningUp, metrics: list[str], sample: list[str], ts: int) -> int:
    """Wait (bounded) until the sample has its point at ts, then count the series that do.

    Polling every series would compete with carbon for the CPU; the sample stands for them
    until the one full count at the end (which waits a little longer for stragglers). A sample
    that stops shrinking for STALL seconds has lost points (dropped creates): stop there."""
    deadline = time.monotonic() + CREATE_TIMEOUT
    pending = list(sample)
    progress = time.monotonic()
    while pending and time.monotonic() < min(deadline, progress + STALL):
        still = [m for m in pending if not has_point(up, m, ts)]
        if len(still) < len(pending):
            progress = time.monotonic()
        pending = still
        time.sleep(0.05)
    deadline = time.monotonic() + FINAL_GRACE
    pending = list(metrics)
    while True:
        pending = [m for m in pending if not has_point(up, m, ts)]
        if not pending or time.monotonic() > deadline:
            return len(metrics) - len(pending)
        time.sleep(0.5)


def send_flush(port: int, metrics: list[str], ts: int, value: int) -> None:
    payload = "".join(f"{m} {value} {ts}\n" for m in metrics).encode()
    with socket.create_connection((HOST, port), timeout=60) as sock:
        sock.sendall(payload)


def run_step(up: RunningUp, n: int) -> Step:
    step = Step(n)
    metrics = names(n)
    sample = random.Random(n).sample(metrics, min(SAMPLE, n))
    # Timestamps on slot boundaries, after any earlier step's.
    first_ts = (int(time.time()) // INTERVAL + 1) * INTERVAL
    time.sleep(max(0.0, first_ts - time.time()))
    began = time.monotonic()
    send_flush(up.port("carbon"), metrics, first_ts, 0)
    created = wait_written(up, metrics, sample, first_ts)
    step.files = sum(1 for m in metrics if up.whisper_file(m).exists())
    if created < n:
        return step  # a create was dropped (or took over a minute): failed already
    step.create_seconds = time.monotonic() - began

    stamps = [first_ts + (k + 1) * INTERVAL for k in range(FLUSHES)]
    sent: dict[int, float] = {}

    def sender() -> None:
        for k, ts in enumerate(stamps):
            time.sleep(max(0.0, ts - time.time()))
            sent[k] = time.monotonic()
            send_flush(up.port("carbon"), metrics, ts, k + 1)

    before = Usage.read(up)
    began = time.monotonic()
    thread = threading.Thread(target=sender, daemon=True)
    thread.start()
    pending = {k: set(sample) for k in range(FLUSHES)}
    written: dict[int, float] = {}
    # Past this the step has failed whatever else happens: stop waiting.
    deadline = began + (FLUSHES + 1) * INTERVAL + SLACK + 5.0
    while len(written) < FLUSHES and time.monotonic() < deadline:
        for k in [k for k in sent if k not in written]:
            pending[k] = {m for m in pending[k] if not has_point(up, m, stamps[k])}
            if not pending[k]:
                written[k] = time.monotonic() - sent[k]
        time.sleep(0.05)
    thread.join()
    after = Usage.read(up)
    step.seconds = time.monotonic() - began
    step.lags = [written.get(k) for k in range(FLUSHES)]
    step.carbon_cpu = (after.carbon_cpu - before.carbon_cpu) / step.seconds
    step.cpu_pressure = (after.cpu_stall - before.cpu_stall) / 1e6 / step.seconds
    step.io_pressure = (after.io_stall - before.io_stall) / 1e6 / step.seconds
    step.complete = wait_written(up, metrics, sample, stamps[-1])
    step.files = sum(1 for m in metrics if up.whisper_file(m).exists())
    return step


def fresh_step(work: Path, n: int, templates: Path) -> Step:
    """One step on a pipeline of its own: a fresh carbon (its create allowance full, its cache
    empty), whose files are removed afterwards."""
    data_dir = work / f"step-{n}"
    flags = ["--aggregators", "0", "--flush-interval", str(INTERVAL)]
    up = RunningUp(data_dir, *flags, "--graphite-config", str(templates))
    try:
        step = run_step(up.wait_ready(), n)
    finally:
        up.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    print("  " + step.describe(), flush=True)
    return step


def ramp(label: str, work: Path, sizes: list[int], templates: Path) -> list[Step]:
    print(f"\n{label}", flush=True)
    steps: list[Step] = []
    passed = 0
    for n in sizes:
        steps.append(fresh_step(work, n, templates))
        if not steps[-1].kept_up:
            break
        passed = n
    # Narrow a doubling that failed: one step halfway back.
    if passed and not steps[-1].kept_up and steps[-1].series > passed * 5 // 4:
        steps.append(fresh_step(work, (passed + steps[-1].series) // 2, templates))
    return steps


def figure(steps: list[Step]) -> int:
    return max((s.series for s in steps if s.kept_up), default=0)


def bound(steps: list[Step]) -> str:
    failed = min((s for s in steps if not s.kept_up), key=lambda s: s.series, default=None)
    if failed is None:
        return "not reached: every step kept up (raise --max-series)"
    if failed.files < failed.series or failed.create_seconds is None:
        return (
            f"creates: {failed.series - failed.files} of {failed.series} new series got no "
            "Whisper file (MAX_CREATES_PER_MINUTE drops them, points and all)"
        )
    needed = failed.series / INTERVAL
    where = (
        "the disk"
        if failed.io_pressure > max(0.2, failed.cpu_pressure)
        else "the CPU: carbon-cache is one Python process whose receiver and writer threads "
        "share one interpreter lock, so about one core is all it can use"
    )
    return (
        f"{where}. At {failed.series:,} series it used {failed.carbon_cpu:.0%} of a core "
        f"(machine CPU pressure {failed.cpu_pressure:.0%}, I/O pressure "
        f"{failed.io_pressure:.0%}); the {needed:,.0f} updates/s it needed are below "
        "MAX_UPDATES_PER_SECOND (20,000), which did not bind."
    )


def whisper_file_bytes() -> int:
    """What whisper allocates per series: 16 B header, 12 B per archive and per point."""
    archives = [whisper.parseRetentionDef(a) for a in statsd_retentions(INTERVAL).split(",")]
    return 16 + 12 * len(archives) + 12 * sum(points for _, points in archives)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-series", type=int, default=128000)
    parser.add_argument(
        "--allocate", action="store_true", help="allocate Whisper files whole, as shipped"
    )
    parser.add_argument("--data-dir", type=Path, help="default: a temporary directory, removed")
    args = parser.parse_args()

    ours = [n for n in (4000, 8000, 16000, 32000, 64000, 128000) if n <= args.max_series]
    peer = [25, 50, 100, 200]
    work = args.data_dir or Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    if args.allocate:
        need = max(ours) * whisper_file_bytes()
        free = shutil.disk_usage(work).free
        if free < 2 * need:
            print(f"--allocate needs {need / 2**30:.1f} GiB twice over; {free / 2**30:.1f} free")
            return 1
        files = {}
    else:
        files = {"WHISPER_SPARSE_CREATE": "True", "WHISPER_FALLOCATE_CREATE": "False"}
    print(
        f"flush interval {INTERVAL} s, {FLUSHES} flushes per step, lag sampled on {SAMPLE} "
        f"series; Whisper files of {whisper_file_bytes():,} B, "
        + ("allocated whole" if args.allocate else "created sparse")
    )
    try:
        shipped = ramp(
            "shipped configuration (graphite/)",
            work / "shipped",
            ours,
            graphite_config(work / "shipped-conf", **files),
        )
        sample = ramp(
            "peer: carbon's sample limits (500 updates/s, 50 creates/min)",
            work / "sample",
            peer,
            graphite_config(
                work / "sample-conf",
                MAX_UPDATES_PER_SECOND=500,
                MAX_CREATES_PER_MINUTE=50,
                **files,
            ),
        )
    finally:
        if args.data_dir is None:
            shutil.rmtree(work, ignore_errors=True)

    ours_n, peer_n = figure(shipped), figure(sample)
    print(f"\nshipped configuration: keeps up with {ours_n:,} series per {INTERVAL} s flush")
    print(f"  bound: {bound(shipped)}")
    print(f"carbon's sample limits: keep up with {peer_n:,} series per {INTERVAL} s flush")
    print(f"  bound: {bound(sample)}")
    if peer_n:
        print(f"ratio shipped / sample limits: {ours_n / peer_n:.0f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
