"""Throughput and memory of our aggregator against the reference daemon (npm statsd 0.9.0).

Both daemons run in the same run on the same machine, fed by the same load generator (C,
sendmmsg, pre-built datagrams, compiled here) and flushing to the same fake Carbon sink, both
with an 8 MiB UDP receive buffer (the reference through a small server module written here).
Loss is judged by totals at the sink: the internal `metrics_received` counts and the sums of
the benchmark's counter counts and timer counts, against what the generator sent. Each trial
also prints the CPU time the daemon and the generator spent per datagram and how idle the
machine was: on a shared 2-core machine these say what bounded a rate.

Scenarios:
  mix       realistic mix (60% counters, 30% timers, 5% gauges, 5% sets, 10k names, 30% of
            lines sampled at 0.1), 20 metrics per datagram: highest rate with < 0.1% loss
  counters  1 counter per datagram: highest rate with < 0.1% loss
  timers    100k timer names at 100k metrics/s offered, 10 s flushes: loss across flushes
            and peak RSS

With --baseline DIR a third daemon takes part in the same run: ours from another checkout
(e.g. the commit before a change: `git archive <commit> | tar -x -C DIR`), its trials
interleaved with the others', so a change is measured against the code before it on the same
machine at the same time (its ratio to the reference is printed beside ours).

Usage: python benchmarks/aggregator_throughput.py [--scenario mix counters timers]
       [--repeat N] [--seconds S] [--baseline DIR]
The reference is installed with `npm install --prefix` into ~/.cache/statsd-metrics-bench
(or $STATSD_BENCH_CACHE), outside the repository.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import random
import re
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CACHE = Path(os.environ.get("STATSD_BENCH_CACHE", Path.home() / ".cache/statsd-metrics-bench"))
RCVBUF = 8 * 1024 * 1024
BASELINE = ROOT  # --baseline: another checkout of the repository, run as the kind "baseline"
LOSS_LIMIT = 0.001

SERVER_MODULE = """\
// UDP server module for the reference daemon with a configurable receive buffer.
const dgram = require('dgram');
exports.start = function (config, callback) {
  const server = dgram.createSocket(
    {type: 'udp4', recvBufferSize: config.recvBufferSize}, callback);
  server.on('listening', function () {
    console.log('recv buffer granted: ' + server.getRecvBufferSize());
  });
  server.bind(config.port, config.address);
  return true;
};
"""


# -- setup -----------------------------------------------------------------------------


def reference_js() -> Path:
    stats_js = CACHE / "node_modules/statsd/stats.js"
    if not stats_js.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        print(f"installing npm statsd@0.9.0 into {CACHE} ...", flush=True)
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(CACHE), "statsd@0.9.0"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    (CACHE / "udp_rcvbuf.js").write_text(SERVER_MODULE)
    return stats_js


def loadgen() -> Path:
    binary = CACHE / "loadgen"
    source = HERE / "loadgen.c"
    if not binary.exists() or binary.stat().st_mtime < source.stat().st_mtime:
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(["gcc", "-O2", "-o", str(binary), str(source)], check=True)
    return binary


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- workloads -------------------------------------------------------------------------


@dataclass
class Workload:
    path: Path  # the datagrams in the load generator's format
    datagrams: list[bytes]
    lines: list[int]  # metric lines per datagram
    counter_total: list[float]  # sum of value / rate of bench counters per datagram
    timer_total: list[float]  # sum of 1 / rate of bench timers per datagram

    def expected(self, sent: int) -> dict[str, float]:
        n = len(self.datagrams)
        full, part = divmod(sent, n)
        out = {}
        for name, per in (
            ("lines", self.lines),
            ("counters", self.counter_total),
            ("timers", self.timer_total),
        ):
            out[name] = full * sum(per) + sum(per[:part])
        return out


def build(path: Path, lines_of: list[list[tuple[str, float, float]]]) -> Workload:
    """lines_of: per datagram, (line, counter contribution, timer contribution)."""
    w = Workload(path, [], [], [], [])
    for lines in lines_of:
        w.datagrams.append("\n".join(text for text, _, _ in lines).encode())
        w.lines.append(len(lines))
        w.counter_total.append(sum(c for _, c, _ in lines))
        w.timer_total.append(sum(t for _, _, t in lines))
    with path.open("wb") as f:
        for d in w.datagrams:
            f.write(struct.pack("<I", len(d)) + d)
    return w


def mix_workload(workdir: Path, count: int = 4000, per: int = 20, seed: int = 1) -> Workload:
    rnd = random.Random(seed)
    areas = ["web", "api", "db", "cache", "chpp", "auth", "jobs", "search"]

    def name(kind: str, i: int) -> str:
        return f"bench.{areas[i % len(areas)]}.{kind}_{i}.value"

    def line() -> tuple[str, float, float]:
        r = rnd.random()
        sampled = rnd.random() < 0.3
        rate = "|@0.1" if sampled else ""
        scale = 10.0 if sampled else 1.0
        if r < 0.60:
            v = rnd.randint(1, 3)
            return f"{name('counter', rnd.randrange(6000))}:{v}|c{rate}", v * scale, 0.0
        if r < 0.90:
            v = round(rnd.expovariate(1 / 80), 1)
            return f"{name('timer', rnd.randrange(3000))}:{v}|ms{rate}", 0.0, scale
        if r < 0.95:
            sign = rnd.choice(["", "", "+", "-"])
            return f"{name('gauge', rnd.randrange(500))}:{sign}{rnd.randint(1, 500)}|g{rate}", 0, 0
        return f"{name('set', rnd.randrange(500))}:user{rnd.randrange(10000)}|s{rate}", 0, 0

    return build(workdir / "mix.bin", [[line() for _ in range(per)] for _ in range(count)])


def counters_workload(workdir: Path, count: int = 10000) -> Workload:
    lines = [[(f"bench.requests.endpoint_{i % 1000}:1|c", 1.0, 0.0)] for i in range(count)]
    return build(workdir / "counters.bin", lines)


def timers_workload(workdir: Path, names: int = 100_000, per: int = 20, seed: int = 2):
    rnd = random.Random(seed)
    return build(
        workdir / "timers.bin",
        [
            [
                (f"bench.latency.op_{(d * per + j) % names}:{rnd.randint(1, 900)}|ms", 0.0, 1.0)
                for j in range(per)
            ]
            for d in range(names // per)
        ],
    )


# -- fake Carbon sink ------------------------------------------------------------------

_PATTERNS = {
    "metrics_received": re.compile(rb"^stats_counts\.statsd\.metrics_received (\S+) ", re.M),
    "counters": re.compile(rb"^stats_counts\.bench\.\S* (\S+) ", re.M),
    "timers": re.compile(rb"^stats\.timers\.bench\.\S*\.count (\S+) ", re.M),
    "flushes": re.compile(rb"^statsd\.numStats (\S+) ", re.M),
}
FIELDS = list(_PATTERNS)


def _sink_connection(conn: socket.socket, totals, lock) -> None:
    buffered = b""
    while data := conn.recv(1 << 20):
        buffered += data
        cut = buffered.rfind(b"\n") + 1
        if not cut:
            continue
        chunk, buffered = buffered[:cut], buffered[cut:]
        sums = [0.0] * len(FIELDS)
        for i, name in enumerate(FIELDS):
            if name == "flushes":
                sums[i] = len(_PATTERNS[name].findall(chunk))
            else:
                sums[i] = sum(float(v) for v in _PATTERNS[name].findall(chunk))
        with lock:
            for i, value in enumerate(sums):
                totals[i] += value
    conn.close()


def _sink_main(port: int, totals, ready) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    lock = threading.Lock()
    server = socket.create_server(("127.0.0.1", port))
    ready.set()
    while True:
        conn, _ = server.accept()
        threading.Thread(target=_sink_connection, args=(conn, totals, lock), daemon=True).start()


class Sink:
    def __init__(self) -> None:
        self.port = free_port()
        self.totals = multiprocessing.Array("d", len(FIELDS))
        ready = multiprocessing.Event()
        self.process = multiprocessing.Process(
            target=_sink_main, args=(self.port, self.totals, ready), daemon=True
        )
        self.process.start()
        ready.wait(10)

    def read(self) -> dict[str, float]:
        return dict(zip(FIELDS, self.totals[:], strict=True))

    def stop(self) -> None:
        self.process.kill()
        self.process.join()


# -- daemons ---------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _kib(path: str, field: str) -> int:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cpu_ns(pid: int) -> int:
    """CPU time used so far by a process and its children, every thread (schedstat, ns)."""
    total = 0
    for p in [pid, *_children(pid)]:
        for task in Path(f"/proc/{p}/task").glob("*"):
            with contextlib.suppress(OSError, ValueError):  # a thread that just ended
                total += int((task / "schedstat").read_text().split()[0])
    return total


def _machine_jiffies() -> tuple[int, int]:
    """(idle, total) jiffies of all cores so far, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return fields[3] + fields[4], sum(fields)


class MemorySampler(threading.Thread):
    """Peak of the summed PSS of a process tree (shared pages counted once), every 0.2 s."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_kib = 0
        self.stopped = threading.Event()
        self.start()

    def run(self) -> None:
        while not self.stopped.wait(0.2):
            pids = [self.pid, *_children(self.pid)]
            total = sum(_kib(f"/proc/{p}/smaps_rollup", "Pss:") for p in pids)
            self.peak_kib = max(self.peak_kib, total)


class Daemon:
    """One daemon under test, started on free ports, stopped by PID."""

    def __init__(self, kind: str, sink: Sink, flush_s: float, workdir: Path) -> None:
        self.kind = kind
        self.port = free_port(socket.SOCK_DGRAM)
        self.flush_s = flush_s
        mgmt = free_port()
        if kind == "reference":
            conf = {
                "port": self.port,
                "address": "127.0.0.1",
                "mgmt_port": mgmt,
                "mgmt_address": "127.0.0.1",
                "graphiteHost": "127.0.0.1",
                "graphitePort": sink.port,
                "flushInterval": int(flush_s * 1000),
                "servers": [
                    {
                        "server": str(CACHE / "udp_rcvbuf.js"),
                        "port": self.port,
                        "address": "127.0.0.1",
                        "recvBufferSize": RCVBUF,
                    }
                ],
            }
            path = workdir / f"reference-{self.port}.js"
            path.write_text(json.dumps(conf))
            cmd = ["node", str(reference_js()), str(path)]
        else:
            path = workdir / f"ours-{self.port}.toml"
            path.write_text(
                f'spool_dir = "{workdir / "spool"}"\nreceive_buffer = {RCVBUF}\n'
                'log_level = "warning"\n'
            )
            cmd = [sys.executable, "-m", "aggregator", "--config", str(path)]
            cmd += ["--port", str(self.port), "--mgmt-port", str(mgmt)]
            cmd += ["--graphite-port", str(sink.port), "--flush-interval", str(flush_s)]
        root = BASELINE if kind == "baseline" else ROOT
        path = os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))
        env = {**os.environ, "PYTHONPATH": path} if kind != "reference" else None
        self.log = (workdir / f"{kind}-{self.port}.log").open("w")
        self.process = subprocess.Popen(
            cmd, cwd=root, env=env, stdout=self.log, stderr=subprocess.STDOUT
        )
        self._wait_mgmt(mgmt)
        self.memory = MemorySampler(self.process.pid)

    def _wait_mgmt(self, port: int) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                    s.sendall(b"health\n")
                    if s.recv(100).startswith(b"health: up"):
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.kind} daemon did not start; see {self.log.name}")

    def peak_memory_mib(self) -> tuple[float, float]:
        """(peak summed PSS, summed per-process VmHWM: an upper bound), in MiB."""
        pids = [self.process.pid, *_children(self.process.pid)]
        hwm = sum(_kib(f"/proc/{p}/status", "VmHWM:") for p in pids)
        return self.memory.peak_kib / 1024, hwm / 1024

    def stop(self) -> None:
        self.memory.stopped.set()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


# -- measurement -----------------------------------------------------------------------


def offer(daemon: Daemon, sink: Sink, w: Workload, rate_dps: float, seconds: float):
    """Send at `rate_dps` datagrams/s; return (loss fraction, details).

    Also measured, to show what bounds a rate on a shared machine: the CPU time the daemon
    (every process and thread) and the generator (its kernel work on loopback included)
    spent per datagram, and how idle the machine was while sending.
    """
    before = sink.read()
    daemon_cpu, machine = _cpu_ns(daemon.process.pid), _machine_jiffies()
    generator = subprocess.Popen(
        [str(loadgen()), str(daemon.port), str(rate_dps), str(seconds), "8", str(w.path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    with generator.stdout:
        out = generator.stdout.read().split()
    _, status, usage = os.wait4(generator.pid, 0)  # reaped here, for its resource usage
    generator.returncode = os.waitstatus_to_exitcode(status)
    if generator.returncode:
        raise RuntimeError(f"load generator failed (exit status {generator.returncode})")
    idle, total = (b - a for a, b in zip(machine, _machine_jiffies(), strict=True))
    sent, took = int(out[0]), float(out[1])
    # the rest of the socket buffer drains, then two flushes carry everything
    time.sleep(2 * daemon.flush_s + 1.0)
    daemon_cpu = _cpu_ns(daemon.process.pid) - daemon_cpu
    after = sink.read()
    got = {k: after[k] - before[k] for k in FIELDS}
    want = w.expected(sent)
    losses = [1 - got["metrics_received"] / want["lines"]]
    for k in ("counters", "timers"):
        if want[k]:
            losses.append(1 - got[k] / want[k])
    achieved = sent / took if took else 0
    cpu = {
        "daemon_us": daemon_cpu / 1000 / max(sent, 1),
        "generator_us": (usage.ru_utime + usage.ru_stime) * 1e6 / max(sent, 1),
        "idle": idle / max(total, 1),
    }
    return max(losses), {"sent": sent, "achieved_dps": achieved, "got": got, "want": want, **cpu}


class Search:
    """Highest offered rate with < 0.1% loss for one daemon: doubling, then bisection.

    Each trial starts a fresh daemon, so names from earlier trials do not weigh on later
    flushes, and only one daemon runs at a time.
    """

    def __init__(self, kind: str, w: Workload, per: int, seconds: float, workdir: Path):
        self.kind, self.w, self.per, self.seconds, self.workdir = kind, w, per, seconds, workdir
        self.good, self.bad = 0.0, None
        self.rate = 20_000 / per  # datagrams/s
        self.done = False

    def trial(self) -> None:
        for attempt in range(3):
            sink = Sink()
            daemon = Daemon(self.kind, sink, 1.0, self.workdir)
            try:
                loss, info = offer(daemon, sink, self.w, self.rate, self.seconds)
            finally:
                daemon.stop()
                sink.stop()
            reached = info["achieved_dps"] > 0.97 * self.rate
            verdict = "ok" if loss < LOSS_LIMIT else "LOSS"
            if not reached:  # the machine starved the generator: inconclusive, try again
                verdict = "generator starved" + (", again" if attempt < 2 else "")
            print(
                f"  {self.kind:9} offered {self.rate * self.per:>10,.0f} metrics/s "
                f"(achieved {info['achieved_dps'] * self.per:>10,.0f}): loss {loss:8.4%} "
                f"{verdict:17} CPU per datagram: daemon {info['daemon_us']:5.2f} us, "
                f"generator {info['generator_us']:4.2f} us; idle {info['idle']:4.0%}",
                flush=True,
            )
            if reached:
                break
        if reached and loss < LOSS_LIMIT:
            self.good = self.rate
        else:
            self.bad = self.rate
        self.rate = self.rate * 2 if self.bad is None else (self.good + self.bad) / 2
        self.done = self.bad is not None and self.bad / max(self.good, 1) <= 1.08

    @property
    def result(self) -> float:
        return self.good * self.per


def highest_rates(w: Workload, per: int, seconds: float, workdir: Path) -> dict[str, float]:
    """Both searches, their trials interleaved so both see the same machine over time."""
    kinds = ["reference", "ours"] + (["baseline"] if BASELINE != ROOT else [])
    searches = [Search(kind, w, per, seconds, workdir) for kind in kinds]
    while not all(s.done for s in searches):
        for search in searches:
            if not search.done:
                search.trial()
    return {s.kind: s.result for s in searches}


def timers_scenario(kind: str, seconds: float, workdir: Path) -> dict:
    w = timers_workload(workdir)
    sink = Sink()
    daemon = Daemon(kind, sink, 10.0, workdir)
    try:
        _, info = offer(daemon, sink, w, 100_000 / 20, seconds)
        time.sleep(10)  # one more flush, so every timer count has reached the sink
        got = sink.read()["timers"]
        loss = 1 - got / info["want"]["timers"]
        pss, hwm = daemon.peak_memory_mib()
    finally:
        daemon.stop()
        sink.stop()
    print(
        f"  {kind:9} timers: loss {loss:.4%}, peak memory {pss:,.0f} MiB "
        f"(sum of per-process peak RSS {hwm:,.0f} MiB)",
        flush=True,
    )
    return {"loss": loss, "rss_mib": pss, "hwm_mib": hwm}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--scenario", nargs="+", default=["mix", "counters", "timers"])
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--seconds", type=float, default=3.0, help="sending time per trial")
    p.add_argument("--timers-seconds", type=float, default=30.0)
    p.add_argument("--baseline", type=Path, help="another checkout, run beside ours")
    args = p.parse_args()
    global BASELINE
    if args.baseline:
        BASELINE = args.baseline.resolve()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stop our daemons on the way out
    reference_js()
    loadgen()
    results: dict[str, dict[str, list]] = {}
    with tempfile.TemporaryDirectory(prefix="aggbench-") as tmp:
        workdir = Path(tmp)
        for run in range(args.repeat):
            print(f"run {run + 1}/{args.repeat}", flush=True)
            for scenario in args.scenario:
                print(f"[{scenario}]", flush=True)
                by_kind = results.setdefault(
                    scenario, {"reference": [], "ours": [], "baseline": []}
                )
                if scenario == "timers":
                    for kind in ("reference", "ours"):
                        by_kind[kind].append(timers_scenario(kind, args.timers_seconds, workdir))
                    continue
                if scenario == "mix":
                    w, per = mix_workload(workdir), 20
                else:
                    w, per = counters_workload(workdir), 1
                for kind, rate in highest_rates(w, per, args.seconds, workdir).items():
                    by_kind[kind].append(rate)
    report(results)
    return 0


def report(results: dict[str, dict[str, list]]) -> None:
    print("\nsummary (medians over runs)")
    targets = {"mix": 3.0, "counters": 4.0}
    for scenario, by_kind in results.items():
        ref, ours = by_kind["reference"], by_kind["ours"]
        if scenario == "timers":
            ref_loss = statistics.median(r["loss"] for r in ref)
            our_loss = statistics.median(r["loss"] for r in ours)
            ref_rss = statistics.median(r["rss_mib"] for r in ref)
            our_rss = statistics.median(r["rss_mib"] for r in ours)
            ref_hwm = statistics.median(r["hwm_mib"] for r in ref)
            our_hwm = statistics.median(r["hwm_mib"] for r in ours)
            print(
                f"  timers   loss: reference {ref_loss:.3%}, ours {our_loss:.3%}; peak memory "
                f"(PSS, whole process tree): reference {ref_rss:,.0f} MiB, ours {our_rss:,.0f} "
                f"MiB (ours/reference {our_rss / ref_rss:.2f}, target <= 0.25); summed VmHWM: "
                f"reference {ref_hwm:,.0f} MiB, ours {our_hwm:,.0f} MiB "
                f"({our_hwm / ref_hwm:.2f})"
            )
            continue
        ratios = [o / r for o, r in zip(ours, ref, strict=True) if r]
        print(
            f"  {scenario:8} reference {statistics.median(ref):>10,.0f} metrics/s, "
            f"ours {statistics.median(ours):>10,.0f} metrics/s: median ratio "
            f"{statistics.median(ratios):.2f}x (target {targets[scenario]:.0f}x); "
            f"per run: {', '.join(f'{x:.2f}x' for x in ratios)}"
        )
        if by_kind["baseline"]:
            base = [b / r for b, r in zip(by_kind["baseline"], ref, strict=True) if r]
            print(
                f"  {scenario:8} baseline {statistics.median(by_kind['baseline']):>10,.0f} "
                f"metrics/s: median ratio {statistics.median(base):.2f}x; per run: "
                f"{', '.join(f'{x:.2f}x' for x in base)}"
            )


if __name__ == "__main__":
    sys.exit(main())
