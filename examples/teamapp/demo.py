"""The whole example in one command: CHPP simulator, the app and a day of traffic.

    python -m examples.teamapp.demo --statsd-port 8125 --duration 600

starts the CHPP simulator and the app as child processes on free loopback ports (each announces
its port), points the app's metrics at the StatsD aggregator on `--statsd-host:--statsd-port`,
and drives it with the traffic generator, one simulated day every `--day` seconds, error bursts
and rate-limit storms included (`--calm` leaves them out). It stops after `--duration` seconds,
or at SIGTERM/SIGINT, and then stops its children by PID and waits for them.
`statsd-metrics up --demo` runs exactly this next to the pipeline.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import FrameType

from examples.teamapp.serving import READY
from examples.teamapp.traffic import TrafficGenerator, TrafficPlan

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def child(module: str, *args: str, log_dir: Path, timeout: float = 30.0) -> Iterator[str]:
    """Run `python -m module args` until the block ends; yields the URL it announces.

    Its stderr (tracebacks of the errors the traffic provokes, on purpose) goes to a log file
    in `log_dir`, quoted if the child fails to start.
    """
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    log = log_dir / f"{module.rpartition('.')[2]}.log"
    with log.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            text=True,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 (no thread runs yet when children start)
        )
    try:
        try:
            url = _wait_ready(proc, module, timeout)
        except RuntimeError as exc:
            stop_process(proc)
            tail = "".join(log.read_text().splitlines(keepends=True)[-20:])
            raise RuntimeError(f"{exc}; its last log lines:\n{tail}") from None
        yield url
    finally:
        stop_process(proc)


def _die_with_parent() -> None:
    """In the child, on Linux: SIGTERM when the demo dies, even by SIGKILL: no orphans."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _wait_ready(proc: subprocess.Popen, module: str, timeout: float) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while (left := deadline - time.monotonic()) > 0:
            if not sel.select(left):
                break
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(f"{module} exited with {proc.wait()} before it was ready")
            if line.startswith(READY + " "):
                return line.split()[1]
    raise RuntimeError(f"{module} was not ready within {timeout} s")


def stop_process(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM this one child (by PID), then SIGKILL if it does not stop in `grace` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def run(args: argparse.Namespace, stop: threading.Event) -> None:
    with ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="teamapp-"))
        logs = Path(tmp)
        chpp_url = stack.enter_context(
            child(
                "examples.teamapp.chpp_sim",
                "--port",
                "0",
                "--rate-limit",
                str(args.chpp_rate_limit),
                "--window",
                "10",
                log_dir=logs,
            )
        )
        app_url = stack.enter_context(
            child(
                "examples.teamapp.app",
                "--port",
                "0",
                "--chpp-url",
                chpp_url,
                "--statsd-host",
                args.statsd_host,
                "--statsd-port",
                str(args.statsd_port),
                "--prefix",
                args.prefix,
                "--users",
                str(args.users),
                "--database",
                f"sqlite:///{tmp}/teamapp.db",
                "--lockout-seconds",
                str(max(5.0, args.day / 10)),
                "--process-interval",
                str(args.process_interval),
                "--trusted-proxies",  # the traffic generator plays one proxy
                "1",
                log_dir=logs,
            )
        )
        print(
            f"demo: app {app_url}, CHPP simulator {chpp_url}, metrics to "
            f"{args.statsd_host}:{args.statsd_port} as {args.prefix}.*",
            flush=True,
        )
        end = time.monotonic() + args.duration
        day = 0
        while not stop.is_set() and (left := end - time.monotonic()) > 0.5:
            day += 1
            plan = TrafficPlan(
                duration=min(args.day, left),
                users=args.users,
                peak_visits=args.peak_visits,
                error_burst=not args.calm,
                rate_limit_storm=not args.calm,
                chpp_url=chpp_url,
                seed=day,
            )
            report = TrafficGenerator(app_url, plan, stop).run()
            print(
                f"demo: day {day}: {report.visits} visits, {report.requests} requests, "
                f"statuses {dict(sorted(report.statuses.items()))}",
                flush=True,
            )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the team-manager example with traffic.")
    parser.add_argument("--statsd-host", default="127.0.0.1")
    parser.add_argument("--statsd-port", type=int, default=8125)
    parser.add_argument("--prefix", default="teamapp")
    parser.add_argument("--duration", type=float, default=3600.0, help="seconds, in all")
    parser.add_argument("--day", type=float, default=300.0, help="seconds per simulated day")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--peak-visits", type=float, default=4.0)
    parser.add_argument("--chpp-rate-limit", type=int, default=20, help="CHPP calls per 10 s")
    parser.add_argument("--process-interval", type=float, default=10.0)
    parser.add_argument("--calm", action="store_true", help="no error bursts or rate-limit storms")
    args = parser.parse_args(argv)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    run(args, stop)


if __name__ == "__main__":
    main()
