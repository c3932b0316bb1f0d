"""Start processes in order, each once the previous one answers; restart one that exits; stop
them in reverse order.

Generic on purpose: what the processes are is the business of `parts`. Every failure is a
PipelineError whose message names the part and the cause (a taken port, a missing dependency,
a part that exited or never answered, with the end of its log).

A part that exits while the pipeline runs (a crash, the OOM killer, an operator's kill) is
reported with the end of its log and started again after a pause that doubles, the others
running on meanwhile: the aggregators spool while Carbon is away and replay when it is back,
so one restart loses nothing. A part that keeps exiting (RESTARTS times within RESTART_WINDOW)
is broken, not unlucky: the supervisor gives up and the pipeline stops, as at start-up.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

POLL = 0.1
LOG_TAIL_LINES = 15
RESTARTS = 5  # restarts of one part within RESTART_WINDOW before giving up
RESTART_WINDOW = 600.0
RESTART_PAUSE = 1.0  # before the first restart; doubles with each restart in the window
RESTART_PAUSE_MAX = 30.0


def terminate(process: subprocess.Popen, grace: float) -> bool:
    """SIGTERM a process we started (by its PID), SIGKILL it if it is still there after `grace`
    seconds; True when it had to be killed."""
    if process.poll() is not None:
        return False
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return True
    return False


class PipelineError(RuntimeError):
    """The pipeline cannot start or keep running; the message says which part and why."""


@dataclass
class Part:
    name: str
    argv: list[str]
    ready: Callable[[], bool]
    """True once the part answers (a port accepts, an HTTP probe gets 200...)."""
    listens: Sequence[tuple[int, str] | tuple[int, str, str]] = ()
    """(port, "tcp"/"udp", the flag that moves it) bound on 127.0.0.1, checked free before
    anything starts."""
    modules: Sequence[str] = ()
    programs: Sequence[str] = ()
    install: str = ""
    """How to get the modules and programs, for the message when one is missing."""
    env: dict[str, str] = field(default_factory=dict)
    stop_timeout: float = 60.0
    """How long a SIGTERM may take (a carbon-cache writes its whole cache) before SIGKILL."""
    prepare: Callable[[], None] | None = None
    """Run before each start (carbon-cache: remove the pidfile of a cache that was killed)."""
    log: Path | None = None
    process: subprocess.Popen | None = None
    restarts: deque[float] = field(default_factory=deque)
    """When it was restarted, within the restart window."""

    @property
    def launched(self) -> subprocess.Popen:
        """The process, for the supervisor's code that runs only once the part was launched."""
        assert self.process is not None, f"{self.name} was never launched"
        return self.process

    def log_tail(self) -> str:
        if self.log is None or not self.log.exists():
            return ""
        lines = self.log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
        return "\n".join(f"    {line}" for line in lines)


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a missing parent package of a dotted name
        return False


def check_dependencies(parts: Sequence[Part]) -> None:
    for part in parts:
        missing = [
            f"Python module '{m}' is not installed" for m in part.modules if not _importable(m)
        ]
        missing += [f"program '{p}' is not on PATH" for p in part.programs if not shutil.which(p)]
        if missing:
            raise PipelineError(
                f"missing dependency of {part.name}: {missing[0]} ({part.install or 'install it'})"
            )


def check_ports_free(parts: Sequence[Part], host: str) -> None:
    """Fail before starting anything if a port is taken, naming every conflict at once (one
    run to find them all, not one per conflict), each with the flag that moves it.

    carbon binds with SO_REUSEPORT, so a second carbon on a taken port would start and silently
    share the traffic with the first; a plain bind here refuses instead.
    """
    owners: dict[tuple[int, str], tuple[str, str]] = {}
    problems = []
    for part in parts:
        for port, proto, *given in part.listens:
            flag = given[0] if given else "its flag"
            move = f"; choose another with {flag}"
            if not 0 < port < 65536:
                problems.append(f"{part.name}: port {port} is out of range{move}")
                continue
            if (port, proto) in owners:
                other, other_flag = owners[port, proto]
                who = (
                    f"{part.name} would use {proto} port {port} twice"
                    if other == part.name
                    else f"{part.name} and {other} would both use {proto} port {port}"
                )
                problems.append(f"{who} ({other_flag} and {flag}); change one of them")
                continue
            owners[port, proto] = (part.name, flag)
            kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
            with socket.socket(socket.AF_INET, kind) as sock:
                if proto == "tcp":
                    # Ignore TIME_WAIT leftovers, as the servers themselves do.
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind((host, port))
                except OSError as exc:
                    problems.append(
                        f"{part.name}: {proto} port {host}:{port} is not available "
                        f"({exc.strerror}){move}"
                    )
    if len(problems) == 1:
        raise PipelineError(problems[0])
    if problems:
        raise PipelineError(
            f"{len(problems)} ports are not available, nothing was started:\n  "
            + "\n  ".join(problems)
        )


def _die_with_parent() -> None:
    """In the child: get SIGTERM if the supervisor dies, so no part outlives a killed `up`."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Supervisor:
    def __init__(
        self,
        parts: Sequence[Part],
        log_dir: Path,
        start_timeout: float = 30.0,
        *,
        report: Callable[[str], None] = lambda message: None,
        restarts: int = RESTARTS,
        restart_pause: float = RESTART_PAUSE,
    ):
        self.parts = list(parts)
        self.log_dir = log_dir
        self.start_timeout = start_timeout
        self.report = report
        self.restarts = restarts
        self.restart_pause = restart_pause
        self.started: list[Part] = []

    def start(self, stop: threading.Event) -> None:
        """Start every part in order and wait for each to answer; on failure stop the rest."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        try:
            for part in self.parts:
                self._start(part, stop)
        except BaseException:
            self.stop()
            raise

    def _start(self, part: Part, stop: threading.Event) -> None:
        part.log = self.log_dir / (part.name.replace(" ", "-") + ".log")
        self._launch(part, "wb")
        self.started.append(part)
        self._wait_ready(part, stop)

    def _launch(self, part: Part, mode: str) -> None:
        if part.prepare is not None:
            part.prepare()
        assert part.log is not None
        with part.log.open(mode) as log:
            part.process = subprocess.Popen(
                part.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **part.env},
                # Own session: Ctrl-C reaches the supervisor only, which stops parts in order.
                start_new_session=True,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 (the supervisor has no threads)
            )

    def _wait_ready(self, part: Part, stop: threading.Event) -> None:
        deadline = time.monotonic() + self.start_timeout
        while not part.ready():
            if part.launched.poll() is not None:
                raise PipelineError(
                    f"{part.name} exited during start-up (exit status "
                    f"{part.launched.returncode}); end of {part.log}:\n{part.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise PipelineError(
                    f"{part.name} did not answer within {self.start_timeout:g} s; "
                    f"end of {part.log}:\n{part.log_tail()}"
                )
            if stop.wait(POLL):
                raise PipelineError(f"interrupted while starting {part.name}")

    def watch(self, stop: threading.Event) -> None:
        """Block until `stop` is set, restarting a part that exits on its own meanwhile;
        raise once one keeps exiting."""
        while not stop.wait(POLL * 5):
            for part in self.started:
                if part.launched.poll() is not None:
                    self._restart(part, stop)

    def _restart(self, part: Part, stop: threading.Event) -> None:
        exited = (
            f"{part.name} exited unexpectedly (exit status {part.launched.returncode}); "
            f"end of {part.log}:\n{part.log_tail()}"
        )
        now = time.monotonic()
        while part.restarts and part.restarts[0] < now - RESTART_WINDOW:
            part.restarts.popleft()
        if len(part.restarts) >= self.restarts:
            raise PipelineError(
                f"{exited}\ngiving up: {len(part.restarts) + 1} exits within {RESTART_WINDOW:g} s"
            )
        pause = min(self.restart_pause * 2 ** len(part.restarts), RESTART_PAUSE_MAX)
        part.restarts.append(now)
        self.report(f"{exited}\nrestarting it in {pause:g} s")
        if stop.wait(pause):
            return
        self._launch(part, "ab")
        try:
            self._wait_ready(part, stop)
        except PipelineError as exc:
            if stop.is_set():
                return
            if part.launched.poll() is None:  # alive and not answering: broken
                raise
            self.report(str(exc))  # exited again while starting: the next round counts it
            return
        self.report(
            f"{part.name} is back (restart {len(part.restarts)} within {RESTART_WINDOW:g} s)"
        )

    def stop(self) -> list[str]:
        """Stop started parts newest first; returns warnings for parts that had to be killed."""
        warnings = []
        while self.started:
            part = self.started.pop()
            if terminate(part.launched, part.stop_timeout):
                warnings.append(
                    f"{part.name} did not stop within {part.stop_timeout:g} s and was killed"
                )
        return warnings
