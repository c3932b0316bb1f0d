"""CPU time of the aggregator's parser per line, against another checkout of the repository.

The whole-daemon benchmark (aggregator_throughput.py) is bounded by the machine on a shared
2-core host; this one times only what a receiver does with a batch once read: decode, split
and parse (`Parser.feed_joined`), on batches of 256 datagrams as recvmmsg hands them over.
Each measurement runs in a fresh process (`python -c`, PYTHONPATH set to the checkout), and
the two checkouts alternate, so both see the same machine over time; the ratio of the two
medians is what to read.

Workloads: `counters` one counter per datagram (10k names, the cached-line path); `mix` the
throughput benchmark's mix (60% counters, 30% timers, 5% gauges, 5% sets, 30% of the lines
sampled at 0.1), 20 lines per datagram; `tagged` the mix with DogStatsD tags on every line;
`read` not the parser but the read before it: CPU time per datagram of `BatchReader.read` on
full batches of one-counter datagrams over loopback, system time included, the two checkouts'
readers (and ours made to record source addresses) in one process, batch by batch in turn,
so the machine's load weighs on them alike (not with --instructions: valgrind does not count
the kernel).

With --instructions the measure is the number of instructions executed per line, counted
by valgrind (callgrind): one run each, deterministic (PYTHONHASHSEED=0), untouched by the other
work on the machine; the difference between a run of 2N and of N batches leaves out start-up
and warm-up.

Usage: python benchmarks/parse_speed.py --baseline /tmp/old-checkout [--rounds 5]
       python benchmarks/parse_speed.py --baseline /tmp/old-checkout --instructions
       (a checkout of another commit: `git archive <commit> | tar -x -C /tmp/old-checkout`)
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

MEASURE = r"""
import random, resource, sys
from aggregator.config import from_mapping
from aggregator.parse import Parser
from aggregator.state import Interval

kind, batches = sys.argv[1], int(sys.argv[2])
rng = random.Random(1)

def mix_line(tags=""):
    r = rng.random()
    if r < 0.6:
        line = f"app.counter.{rng.randrange(6000)}:1|c"
    elif r < 0.9:
        line = f"app.timer.{rng.randrange(3000)}:{rng.randrange(1, 900)}|ms"
    elif r < 0.95:
        line = f"app.gauge.{rng.randrange(500)}:{rng.randrange(100)}|g"
    else:
        line = f"app.set.{rng.randrange(500)}:u{rng.randrange(1000)}|s"
    if line.endswith(("|c", "|ms")) and rng.random() < 0.3:
        line += "|@0.1"
    return line + tags

if kind == "counters":
    datagrams = [[f"app.requests.{i % 10000}:1|c"] for i in range(256 * 40)]
elif kind == "mix":
    datagrams = [[mix_line() for _ in range(20)] for _ in range(256 * 4)]
else:
    datagrams = [[mix_line(f"|#route:r{rng.randrange(20)},dc:eu") for _ in range(20)]
                 for _ in range(256 * 4)]
groups = [datagrams[i:i + 256] for i in range(0, len(datagrams), 256)]
joined = [("\n".join("\n".join(d) for d in g).encode(), len(g), max(len("\n".join(d)) for d in g))
          for g in groups]
lines = sum(len(d) for d in datagrams) * batches // len(groups)
parser = Parser(from_mapping({}))
for data, n, longest in joined:  # warm the caches, as a running receiver has them
    parser.feed_joined(data, n, 0, longest, Interval())
start = resource.getrusage(resource.RUSAGE_SELF).ru_utime
for i in range(batches):
    iv = Interval() if i % len(joined) == 0 else iv
    data, n, longest = joined[i % len(joined)]
    parser.feed_joined(data, n, 0, longest, iv)
used = resource.getrusage(resource.RUSAGE_SELF).ru_utime - start
print(used / lines * 1e9)
"""


def measure(checkout: Path, kind: str, batches: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, kind, str(batches)],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return float(out.stdout.split()[-1])


def instructions(checkout: Path, kind: str, batches: int) -> float:
    """Instructions per line of `batches` batches (valgrind callgrind)."""
    env = {**os.environ, "PYTHONPATH": str(checkout), "PYTHONHASHSEED": "0"}
    counts = []
    valgrind = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    for n in (batches, 2 * batches):
        out = subprocess.run(
            [*valgrind, sys.executable, "-c", MEASURE, kind, str(n)],
            cwd=checkout,
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=1200,
        )
        found = re.search(r"Collected : (\d+)", out.stderr)
        if found is None:
            raise SystemExit(f"no instruction count from valgrind:\n{out.stderr}")
        counts.append(int(found.group(1)))
        lines_per_batch = {"counters": 256, "mix": 256 * 20, "tagged": 256 * 20}[kind]
    return (counts[1] - counts[0]) / (batches * lines_per_batch)


def read_pairs(baseline: Path, batches: int = 3000) -> dict[str, float]:
    """ns per datagram of each reader, reading full batches in turn (see the docstring)."""
    spec = importlib.util.spec_from_file_location(
        "baseline_recvmmsg", baseline / "aggregator" / "recvmmsg.py"
    )
    if spec is None or spec.loader is None:
        raise SystemExit(f"no aggregator/recvmmsg.py under {baseline}")
    old = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(old)
    sys.path.insert(0, str(ROOT))
    from aggregator.recvmmsg import BATCH, BatchReader

    def receiver() -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        return sock

    addressed = BatchReader(65536)
    addressed.keep_addresses(1e9)
    readers = {"baseline": old.BatchReader(65536), "this": BatchReader(65536)}
    readers["this, addresses"] = addressed
    sockets = {name: receiver() for name in readers}
    senders = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(8)]
    datagrams = [b"app.requests.%d:1|c" % i for i in range(BATCH)]
    used = dict.fromkeys(readers, 0.0)
    read = dict.fromkeys(readers, 0)
    for _ in range(batches):
        for name, reader in readers.items():
            for i, d in enumerate(datagrams):
                senders[i % 8].sendto(d, sockets[name].getsockname())
            start = time.process_time()
            read[name] += reader.read(sockets[name])[1]
            used[name] += time.process_time() - start
    for s in [*sockets.values(), *senders]:
        s.close()
    return {name: used[name] / max(read[name], 1) * 1e9 for name in readers}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--baseline", type=Path, required=True, help="the other checkout")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--workload", nargs="+", default=["counters", "mix", "tagged"])
    p.add_argument("--instructions", action="store_true", help="count instructions (valgrind)")
    args = p.parse_args()
    if args.instructions:
        for kind in (k for k in args.workload if k != "read"):
            n = {"counters": 200, "mix": 10, "tagged": 10}[kind]
            base, this = (instructions(c, kind, n) for c in (args.baseline, ROOT))
            print(
                f"{kind:9} instructions/line: baseline {base:7.0f}, this {this:7.0f}; "
                f"this/baseline {this / base:.3f}",
                flush=True,
            )
        return 0
    batches = {"counters": 2000, "mix": 200, "tagged": 100}
    for kind in args.workload:
        if kind == "read":
            rounds = [read_pairs(args.baseline) for _ in range(args.rounds)]
            for name in ("this", "this, addresses"):
                ratios = [r[name] / r["baseline"] for r in rounds]
                print(
                    f"read      {name}/baseline, ns per datagram: median ratio "
                    f"{statistics.median(ratios):.3f} (per round {min(ratios):.3f} to "
                    f"{max(ratios):.3f}; baseline median "
                    f"{statistics.median(r['baseline'] for r in rounds):.0f} ns)",
                    flush=True,
                )
            continue
        times: dict[str, list[float]] = {"baseline": [], "this": []}
        for _ in range(args.rounds):
            for name, checkout in (("baseline", args.baseline), ("this", ROOT)):
                times[name].append(measure(checkout, kind, batches[kind]))
        ratios = [t / b for t, b in zip(times["this"], times["baseline"], strict=True)]
        base, this = statistics.median(times["baseline"]), statistics.median(times["this"])
        print(
            f"{kind:9} ns/line: baseline {base:6.0f}, this {this:6.0f}; this/baseline "
            f"{this / base:.3f} (per round {min(ratios):.3f} to {max(ratios):.3f})",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
