"""Start processes in order, each once the previous one answers; stop them in reverse order.

Generic on purpose: what the processes are is pipeline.parts' business. Every failure is a
PipelineError whose message names the part and the cause (a taken port, a missing dependency,
a part that exited or never answered, with the end of its log).
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

POLL = 0.1
LOG_TAIL_LINES = 15


class PipelineError(RuntimeError):
    """The pipeline cannot start or keep running; the message says which part and why."""


@dataclass
class Part:
    name: str
    argv: list[str]
    ready: Callable[[], bool]
    """True once the part answers (a port accepts, an HTTP probe gets 200...)."""
    listens: Sequence[tuple[int, str]] = ()
    """(port, "tcp"/"udp") bound on 127.0.0.1, checked free before anything starts."""
    modules: Sequence[str] = ()
    programs: Sequence[str] = ()
    install: str = ""
    """How to get the modules and programs, for the message when one is missing."""
    env: dict[str, str] = field(default_factory=dict)
    stop_timeout: float = 60.0
    """How long a SIGTERM may take (a carbon-cache writes its whole cache) before SIGKILL."""
    log: Path | None = None
    process: subprocess.Popen | None = None

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
    """Fail before starting anything if a port is taken.

    carbon binds with SO_REUSEPORT, so a second carbon on a taken port would start and silently
    share the traffic with the first; a plain bind here refuses instead.
    """
    owners: dict[tuple[int, str], str] = {}
    for part in parts:
        for port, proto in part.listens:
            if not 0 < port < 65536:
                raise PipelineError(f"{part.name}: port {port} is out of range")
            if (port, proto) in owners:
                raise PipelineError(
                    f"{part.name} and {owners[port, proto]} would both use {proto} port {port}"
                )
            owners[port, proto] = part.name
            kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
            with socket.socket(socket.AF_INET, kind) as sock:
                if proto == "tcp":
                    # Ignore TIME_WAIT leftovers, as the servers themselves do.
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind((host, port))
                except OSError as exc:
                    raise PipelineError(
                        f"{part.name}: {proto} port {host}:{port} is not available "
                        f"({exc.strerror}); choose another with its flag"
                    ) from None


def _die_with_parent() -> None:
    """In the child: get SIGTERM if the supervisor dies, so no part outlives a killed `up`."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Supervisor:
    def __init__(self, parts: Sequence[Part], log_dir: Path, start_timeout: float = 30.0):
        self.parts = list(parts)
        self.log_dir = log_dir
        self.start_timeout = start_timeout
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
        with part.log.open("wb") as log:
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
        self.started.append(part)
        deadline = time.monotonic() + self.start_timeout
        while not part.ready():
            if part.process.poll() is not None:
                raise PipelineError(
                    f"{part.name} exited during start-up (exit status "
                    f"{part.process.returncode}); end of {part.log}:\n{part.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise PipelineError(
                    f"{part.name} did not answer within {self.start_timeout:g} s; "
                    f"end of {part.log}:\n{part.log_tail()}"
                )
            if stop.wait(POLL):
                raise PipelineError(f"interrupted while starting {part.name}")

    def watch(self, stop: threading.Event) -> None:
        """Block until `stop` is set; raise if a part exits on its own meanwhile."""
        while not stop.wait(POLL * 5):
            for part in self.started:
                if part.process.poll() is not None:
                    raise PipelineError(
                        f"{part.name} exited unexpectedly (exit status "
                        f"{part.process.returncode}); end of {part.log}:\n{part.log_tail()}"
                    )

    def stop(self) -> list[str]:
        """Stop started parts newest first; returns warnings for parts that had to be killed."""
        warnings = []
        while self.started:
            part = self.started.pop()
            if part.process.poll() is not None:
                continue
            part.process.send_signal(signal.SIGTERM)
            try:
                part.process.wait(part.stop_timeout)
            except subprocess.TimeoutExpired:
                part.process.kill()
                part.process.wait()
                warnings.append(
                    f"{part.name} did not stop within {part.stop_timeout:g} s and was killed"
                )
        return warnings
