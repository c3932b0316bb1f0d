"""Run a real `statsd-metrics up` from tests and benchmarks, read back what it stored, and ask
it what Grafana asks.

Everything on 127.0.0.1 and on free ports; every wait is bounded; the process is stopped by
its PID (SIGTERM, as an operator would), never by name.
"""

from __future__ import annotations

import json
import queue
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import pytest

from aggregator.naming import fold_tags, host_name, sanitize
from statsd_metrics.grafana.alerts.evaluate import backend_render_form
from statsd_metrics.graphite.config import GRAPHITE_DIR
from statsd_metrics.supervisor.layout import HOST, INSTANCE_STRIDE, Ports
from support.net import wait_until

T = TypeVar("T")


def _bindable(port: int) -> bool:
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind((HOST, port))
            except OSError:
                return False
    return True


def free_ports(instances: int = 1) -> Ports:
    """Base ports for every role, each free on TCP and UDP for `instances` instances.

    Taken below the kernel's ephemeral range, so that outgoing connections do not grab them
    between this check and the servers' bind.
    """
    chosen: dict[str, int] = {}
    used: set[int] = set()
    for role in Ports.__dataclass_fields__:
        for _ in range(500):
            base = random.randrange(20000, 32000)
            block = {base + INSTANCE_STRIDE * n for n in range(instances)}
            if used.isdisjoint(block) and all(_bindable(p) for p in block):
                break
        else:
            raise RuntimeError("no free port block found")
        chosen[role] = base
        used |= block
    return Ports(**chosen)


def port_flags(ports: Ports) -> list[str]:
    flags = []
    for role in Ports.__dataclass_fields__:
        flags += [f"--{role}-port", str(getattr(ports, role))]
    return flags


def graphite_config(target: Path, **carbon_settings: object) -> Path:
    """A copy of graphite/ in `target` with some carbon.conf settings replaced."""
    shutil.copytree(GRAPHITE_DIR, target)
    conf = target / "carbon.conf"
    lines = conf.read_text().splitlines()
    for key, value in carbon_settings.items():
        index = next(i for i, line in enumerate(lines) if line.startswith(f"{key} ="))
        lines[index] = f"{key} = {value}"
    conf.write_text("\n".join(lines) + "\n")
    return target


class RunningUp:
    """One `statsd-metrics up` process (`python -m statsd_metrics up`), its addresses, its files."""

    def __init__(
        self,
        data_dir: Path,
        *args: str,
        instances: int = 1,
        env: dict[str, str] | None = None,
        command: Sequence[str] = (sys.executable, "-m", "statsd_metrics"),
        cwd: Path | None = None,
    ):
        """`command`: how to run `statsd-metrics` (an installed console script, say)."""
        self.data_dir = data_dir
        self.ports = free_ports(instances)
        data_dir.mkdir(parents=True, exist_ok=True)
        self.stderr_path = data_dir / "up.stderr"
        self.argv = [
            *command,
            "up",
            "--data-dir",
            str(data_dir),
            *port_flags(self.ports),
            *args,
        ]
        self.addresses: dict[str, list[str]] = {}
        self._lines: queue.Queue[str | None] = queue.Queue()
        with self.stderr_path.open("wb") as stderr:
            self.process = subprocess.Popen(
                self.argv, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True, cwd=cwd
            )
        threading.Thread(target=self._read_stdout, daemon=True).start()

    def _read_stdout(self) -> None:
        for line in self.process.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def wait_ready(self, timeout: float = 60.0) -> RunningUp:
        """Read the address lines; raise with up's stderr if it exits or takes too long."""
        deadline = time.monotonic() + timeout
        while "render API" not in self.addresses:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise RuntimeError(
                    f"up gave no addresses in {timeout} s:\n{self.stderr()}"
                ) from None
            if line is None:
                self.process.wait(30)
                raise RuntimeError(f"up exited ({self.process.returncode}):\n{self.stderr()}")
            role, _, url = line.partition(": ")
            self.addresses.setdefault(role, []).append(url)
        return self

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 120.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise

    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def port(self, role: str, index: int = 0) -> int:
        return int(self.addresses[role][index].rsplit(":", 1)[1])

    @property
    def render_url(self) -> str:
        return self.addresses["render API"][0]

    def send_plaintext(self, lines: list[str]) -> None:
        """Graphite plaintext to where the aggregators send it (the relay or the cache)."""
        with socket.create_connection((HOST, self.port("carbon")), timeout=5) as sock:
            sock.sendall("".join(f"{line}\n" for line in lines).encode())

    def render(self, target: str, start: int | str, end: int | str = "now") -> list[dict]:
        query = urllib.parse.urlencode(
            {"target": target, "from": start, "until": end, "format": "json"}
        )
        return get_json(f"{self.render_url}/render?{query}")

    def whisper_file(self, metric: str, instance: str = "a") -> Path:
        return (
            self.data_dir / f"carbon-{instance}" / "whisper" / (metric.replace(".", "/") + ".wsp")
        )


def get_json(url: str, timeout: float = 30.0):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def on_this_host(name: str, tail: str = "", tags: str = "") -> str:
    """The path `up`'s one aggregator writes for `name` on this machine: the host tag (and
    `tags`, "k=v;k2=v2") folded into one segment after the name, then `tail` (a timer's field,
    a set's `count`): `on_this_host("stats_counts.shop.orders")` is
    `stats_counts.shop.orders.host-<this host>`."""
    host = "host=" + sanitize(host_name("auto")).replace(";", "_").replace("=", "_")
    folded = fold_tags([t for t in [*tags.split(";"), host] if t])
    return f"{name}.{folded}" + (f".{tail}" if tail else "")


def points(series: dict) -> dict[int, float]:
    """A rendered series' non-null datapoints by timestamp."""
    return {ts: value for value, ts in series["datapoints"] if value is not None}


def wait_for(probe: Callable[[], T], timeout: float = 30.0, what: str = "a condition") -> T:
    """Poll until probe() is truthy (bounded); return its value. Servers answer in tenths of
    a second: poll at that pace."""
    return wait_until(probe, timeout, what, interval=0.2)


def encode_uri_component(value: str) -> str:
    """JavaScript's encodeURIComponent, which Grafana's frontend uses."""
    return urllib.parse.quote(value, safe="-_.!~*'()")


class Grafana:
    """The HTTP requests of Grafana's Graphite datasource, byte for byte as the shared
    reference (grafana-graphite-requests.md) describes them. Returns (status, JSON or text)."""

    def __init__(self, url: str):
        self.url = url

    def dashboard_render(
        self, targets: dict[str, str], start: int | str, end: int | str, max_data_points: int
    ) -> tuple[int, object]:
        """Frontend (dashboards, Explore): each target wrapped in aliasSub with its refId."""
        wrapped = (f'aliasSub({target}, "(^.*$)", "\\1 {ref}")' for ref, target in targets.items())
        body = "&".join(f"target={encode_uri_component(t)}" for t in wrapped)
        body += f"&from={start}&until={end}&format=json&maxDataPoints={max_data_points}"
        return self._post("/render", body)

    def backend_render(
        self, target: str, start: int, end: int, max_data_points: int = 43200
    ) -> tuple[int, object]:
        """Alerting and "Save & test" (Go backend): sorted keys, `+` for spaces, no aliasSub."""
        return self._post("/render", backend_render_form(target, start, end, max_data_points))

    def find_post(self, query: str, start: int, end: int) -> tuple[int, object]:
        # The frontend writes the glob into the body unencoded.
        return self._post(f"/metrics/find?from={start}&until={end}", f"query={query}")

    def find_get(self, query: str) -> tuple[int, object]:
        return self._send(f"/metrics/find?query={encode_uri_component(query)}")

    def expand(self, query: str) -> tuple[int, object]:
        return self._send(f"/metrics/expand?query={encode_uri_component(query)}")

    def _post(self, path: str, body: str) -> tuple[int, object]:
        return self._send(path, body.encode())

    def _send(self, path: str, body: bytes | None = None) -> tuple[int, object]:
        headers = {"User-Agent": "Grafana/12.0.0"}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        request = urllib.request.Request(self.url + path, data=body, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(errors="replace")


@pytest.fixture
def start_up(tmp_path: Path) -> Iterator[Callable[..., RunningUp]]:
    """Start `up` on free ports; every one started here is stopped by PID at teardown."""
    started: list[RunningUp] = []

    def start(*args: str, data_dir: Path | None = None, **options) -> RunningUp:
        up = RunningUp(data_dir or tmp_path / f"var{len(started)}", *args, **options)
        started.append(up)
        return up

    yield start
    for up in started:
        up.stop()
