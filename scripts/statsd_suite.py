"""Run the `statsd` package's own test suite against `statsd_metrics.Client`.

    python scripts/statsd_suite.py [--tests PATH] [pytest options]

The suite is statsd 4.0.1's `statsd/tests.py`: taken from the installed package (the `test`
extra pins it), or from PATH (e.g. the sdist: `pip download --no-deps --no-binary :all:
statsd==4.0.1`). It is copied into a temporary directory outside the repository, its three
client imports are pointed at this module, and pytest runs it there. Nothing of it is kept.

The suite inspects what was sent by replacing `client._sock` with a `Mock` and reading its
`sendto` (UDP) or `sendall` (TCP, Unix) calls. The adapters below only make that possible: a
`_sock` property that puts the mock behind our transport, `buffered=False` (the suite looks
right after each call, where our default buffers) and a sampling source that reads
`random.random` at call time (the suite patches it). Everything else is our client as shipped.
Which tests fail, and why on purpose: docs/migration.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import statsd_metrics
from statsd_metrics import compat
from statsd_metrics.transport import UDPTransport


class _DatagramToMock:
    """Our connected UDP socket, as the suite's mock sees it: `sendto(data, address)`."""

    type = socket.SOCK_DGRAM

    def __init__(self, mock: Any, address: Any) -> None:
        self._mock = mock
        self._address = address

    def send(self, data: bytes) -> int:
        self._mock.sendto(data, self._address)
        return len(data)

    def getsockopt(self, *args: Any) -> int:
        return 0

    def close(self) -> None:
        pass


class _StreamToMock:
    """A stream socket whose writes go to the mock; pollable (nothing to read: still open)."""

    type = socket.SOCK_STREAM

    def __init__(self, mock: Any) -> None:
        self._mock = mock
        self._read, self._write = os.pipe()

    def fileno(self) -> int:
        return self._read

    def sendall(self, data: bytes) -> None:
        self._mock.sendall(data)

    def close(self) -> None:
        for fd in (self._read, self._write):
            os.close(fd)


class _Adapted:
    @property
    def _sock(self) -> Any:
        mock = self.__dict__.get("_suite_mock")
        return mock if mock is not None else self._transport._sock  # type: ignore[attr-defined]

    @_sock.setter
    def _sock(self, mock: Any) -> None:
        self.__dict__["_suite_mock"] = mock
        transport = self._transport  # type: ignore[attr-defined]
        if isinstance(transport, UDPTransport):
            transport._sock = _DatagramToMock(mock, transport._address()[1])  # type: ignore[assignment]
        else:
            transport._sock = _StreamToMock(mock)  # type: ignore[assignment]


def _options(options: dict[str, Any]) -> dict[str, Any]:
    options.setdefault("buffered", False)
    # `random.random` read at each call, not now: the suite patches it
    options.setdefault("random", lambda: random.random())  # noqa: PLW0108
    return options


class StatsClient(_Adapted, statsd_metrics.Client):
    def __init__(self, *args: Any, **options: Any) -> None:
        super().__init__(*args, **_options(options))


class TCPStatsClient(_Adapted, compat.TCPStatsClient):
    def __init__(self, *args: Any, **options: Any) -> None:
        super().__init__(*args, **_options(options))


class UnixSocketStatsClient(_Adapted, compat.UnixSocketStatsClient):
    def __init__(self, *args: Any, **options: Any) -> None:
        super().__init__(*args, **_options(options))


def installed_suite() -> Path:
    spec = importlib.util.find_spec("statsd")
    if spec is None or spec.origin is None:
        sys.exit("the statsd package is not installed (pip install statsd==4.0.1)")
    return Path(spec.origin).parent / "tests.py"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=Path, default=None, help="statsd's tests.py")
    args, pytest_args = parser.parse_known_args()
    source = (args.tests or installed_suite()).read_text()
    adapted, count = re.subn(
        r"^from statsd import (StatsClient|TCPStatsClient|UnixSocketStatsClient)$",
        r"from statsd_suite import \1",
        source,
        flags=re.MULTILINE,
    )
    if count != 3:
        sys.exit(f"expected statsd's three client imports in the suite, found {count}")
    scratch = Path(tempfile.mkdtemp(prefix="statsd-suite-"))
    try:
        (scratch / "test_statsd_suite.py").write_text(adapted)
        shutil.copy(__file__, scratch / "statsd_suite.py")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(scratch), env.get("PYTHONPATH")]))
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rfE"]
        return subprocess.run(
            [*command, *pytest_args, "test_statsd_suite.py"], cwd=scratch, env=env, check=False
        ).returncode
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
