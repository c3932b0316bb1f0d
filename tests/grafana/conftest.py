"""The live setup the Grafana tests share: one pipeline, the example app, its traffic, faults.

`statsd-metrics up --aggregators 0` runs Carbon and the render API (with the preview); the
aggregator runs beside it, sending to Carbon through a TCP forwarder the tests can cut (Carbon
unreachable, the aggregator spools); the example team-manager app and its CHPP simulator run
in this process, so that faults can be switched on: an error burst in the app, a CHPP outage.
Everything is on 127.0.0.1 and free ports, and stopped by PID at the end of the module.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
import yaml
from flask import request

from examples.teamapp.app import create_app
from examples.teamapp.chpp_sim import ChppSimulator, SimSettings, create_sim_app
from examples.teamapp.serving import serve_in_thread
from examples.teamapp.traffic import TrafficGenerator, TrafficPlan
from statsd_metrics.grafana.alerts.rules import RULES_DIR, seconds
from statsd_metrics.process import ProcessCollector
from statsd_metrics.supervisor import terminate
from statsd_metrics.supervisor.layout import HOST
from support.pipeline import RunningUp, free_ports, graphite_config, wait_for

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "test-output"
PREFIX = "teamapp"
# The same example app a second time, with two constant tags (folded by the aggregator into
# one path segment after each name): the dashboards and rules must show both.
TAGGED_PREFIX = "tagapp"
TAGGED_TAGS = "env:prod,region:eu"
FLUSH = 1  # seconds: aggregator flush interval and finest Whisper archive
# Rule durations in the tests: a minute of the shipped rules lasts two seconds here.
TIME_SCALE = 1 / 30
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class Forwarder:
    """Aggregator -> Carbon over a TCP hop that `cut()` takes away (connections refused)."""

    def __init__(self, target_port: int, port: int) -> None:
        self.target_port = target_port
        self.port = port
        self.lock = threading.Lock()
        self.sockets: list[socket.socket] = []
        self.listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((HOST, self.port))
        listener.listen()
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            upstream = socket.create_connection((HOST, self.target_port), timeout=5)
            with self.lock:
                self.sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        try:
            while data := client.recv(65536):
                upstream.sendall(data)
        except OSError:
            pass
        finally:
            client.close()
            upstream.close()

    def cut(self) -> None:
        with self.lock:
            if self.listener is not None:
                # shutdown() wakes the thread blocked in accept(); close() alone would not,
                # and the port would go on accepting.
                with suppress(OSError):
                    self.listener.shutdown(socket.SHUT_RDWR)
                self.listener.close()
                self.listener = None
            for sock in self.sockets:
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self.sockets.clear()

    close = cut


class Aggregator:
    """`python -m aggregator`, configured as `up` configures it, stopped by its PID."""

    def __init__(self, workdir: Path, graphite_port: int) -> None:
        ports = free_ports()
        self.port, self.mgmt_port = ports.statsd, ports.mgmt
        config = workdir / "aggregator.json"
        config.write_text(json.dumps({"tag_mode": "path", "spool_dir": str(workdir / "spool")}))
        self.log = (workdir / "aggregator.log").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "aggregator", "--config", str(config), "--bind", HOST,
             "--port", str(self.port), "--graphite-host", HOST,
             "--graphite-port", str(graphite_port), "--flush-interval", str(FLUSH),
             "--mgmt-port", str(self.mgmt_port)],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for(self._healthy, 30, "the aggregator's /health")

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{HOST}:{self.mgmt_port}/health", timeout=1):
                return True
        except OSError:
            return self.process.poll() is not None  # exited: stop waiting, fail below

    def send(self, *lines: bytes) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for line in lines:
                sock.sendto(line, (HOST, self.port))

    def stop(self) -> None:
        terminate(self.process, 30)
        self.log.close()


@dataclass
class Faults:
    """Switches the example app's before_request hook reads."""

    error_rate: float = 0.0  # share of squad/training views that raise (an error burst)
    rng: random.Random = field(default_factory=lambda: random.Random(7))


class Users:
    """Managers clicking through the app at a steady pace: squad and training views, and one
    sync every third round (a small share of the requests, as in real use)."""

    def __init__(self, app_url: str, managers: int = 6, period: float = 0.25) -> None:
        self.url = app_url
        self.period = period
        self.sessions = []
        for n in range(1, managers + 1):
            http = requests.Session()
            http.headers["X-Forwarded-For"] = f"192.0.2.{n}"
            response = http.post(
                f"{app_url}/login", data={"username": f"manager{n}", "password": f"pass-{n}"}
            )
            assert response.ok, response.text[:200]
            self.sessions.append(http)
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        self.stopping.clear()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        rounds = 0
        deadline = time.monotonic() + 600  # bounded even if a test forgets to stop it
        while not self.stopping.wait(self.period) and time.monotonic() < deadline:
            rounds += 1
            for http in self.sessions:
                for path in ("/squad", "/training"):
                    self._request(http, "GET", path)
            if rounds % 3 == 0:
                http = self.sessions[rounds // 3 % len(self.sessions)]
                self._request(http, "POST", "/sync")

    def _request(self, http: requests.Session, method: str, path: str) -> None:
        with suppress(requests.RequestException):
            http.request(method, self.url + path, timeout=10, allow_redirects=False)

    def stop(self) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(15)
            self.thread = None

    def close(self) -> None:
        self.stop()
        for http in self.sessions:
            http.close()


class Live:
    """The running setup, with the switches the fault tests turn."""

    def __init__(self, work: Path, stack: ExitStack) -> None:
        self.stack = stack
        self.prefix = PREFIX
        # Carbon's own metrics every second, so the Pipeline dashboard has them at once.
        templates = graphite_config(work / "graphite", CARBON_METRIC_INTERVAL=1)
        self.up = RunningUp(work / "var", "--flush-interval", str(FLUSH), "--aggregators", "0",
                            "--graphite-config", str(templates))  # fmt: skip
        stack.callback(self.up.stop)
        self.up.wait_ready()
        self.forwarder = Forwarder(self.up.port("carbon"), free_ports().relay)
        stack.callback(self.forwarder.close)
        self.aggregator = Aggregator(work, self.forwarder.port)
        stack.callback(self.aggregator.stop)

        # A small quota for the simulated day, so that its rate-limit storm hits it, and a
        # latency that keeps syncs in flight when the app reports its levels.
        self.chpp = ChppSimulator(SimSettings(latency_ms=80, error_rate=0.0, rate_limit=10))
        self.chpp_app = create_sim_app(self.chpp)
        self.chpp_port = free_ports().render
        self.chpp_server: ExitStack | None = None
        self.chpp_up()
        stack.callback(self.chpp_down)
        self.app = self.example_app(work, PREFIX, {})
        self.tagged_app = self.example_app(work, TAGGED_PREFIX, {"STATSD_TAGS": TAGGED_TAGS})
        self.faults = Faults()
        faults = self.faults

        @self.app.before_request
        def injected_error_burst() -> None:
            if (
                request.endpoint in ("squad", "training")
                and faults.rng.random() < faults.error_rate
            ):
                raise RuntimeError("injected fault")

        self.app_url = stack.enter_context(serve_in_thread(self.app))
        self.tagged_url = stack.enter_context(serve_in_thread(self.tagged_app))
        self.collector = None
        self.app_sending()
        stack.callback(self.app_silent)
        tagged_client = self.tagged_app.extensions["statsd_metrics"].client
        tagged_collector = ProcessCollector(tagged_client, interval=0.5).start()
        stack.callback(tagged_collector.stop)
        self.started = time.time()
        self.rules_dir = scaled_rules(RULES_DIR, work / "rules", TIME_SCALE)

    def example_app(self, work: Path, prefix: str, extra: dict):
        """The example app sending to the live aggregator under `prefix`, closed at the end."""
        app = create_app({
            "CHPP_URL": self.chpp_url,
            "CHPP_RETRIES": 1,
            "DEMO_USERS": 12,
            "STATSD_HOST": HOST,
            "STATSD_PORT": self.aggregator.port,
            "STATSD_PREFIX": prefix,
            "STATSD_METRICS_USER_HASH_SECRET": os.urandom(32).hex(),
            "TRUST_PROXY": True,
            "LOCKOUT_SECONDS": 5,
            "RATE_LIMITS": {"login": (30, 60.0), "sync": (1, 1.0)},
            "DATABASE_URL": f"sqlite:///{work}/{prefix}.db",
            **extra,
        })  # fmt: skip
        self.stack.callback(app.extensions["statsd_metrics"].client.close)
        self.stack.callback(app.extensions["teamapp"].chpp.close)
        return app

    @property
    def render_url(self) -> str:
        return self.up.render_url

    def users_factory(self) -> Users:
        return Users(self.app_url)

    @property
    def chpp_url(self) -> str:
        return f"http://{HOST}:{self.chpp_port}"

    def chpp_up(self) -> None:
        """The CHPP simulator answers (again) on its port."""
        self.chpp_server = ExitStack()
        self.chpp_server.enter_context(serve_in_thread(self.chpp_app, self.chpp_port))

    def chpp_down(self) -> None:
        """An outage of the external API: its port refuses connections."""
        if self.chpp_server is not None:
            self.chpp_server.close()
            self.chpp_server = None

    def app_sending(self) -> None:
        """The app's process collector runs: its heartbeat (uptime) advances."""
        client = self.app.extensions["statsd_metrics"].client
        self.collector = ProcessCollector(client, interval=0.5).start()

    def app_silent(self) -> None:
        if self.collector is not None:
            self.collector.stop()
            self.collector = None


QUOTED_DURATION = re.compile(r"'(\d+)(min|s|h)'")
UNIT = {"s": 1, "min": 60, "h": 3600}


def scaled_rules(source: Path, target: Path, factor: float) -> Path:
    """A copy of the rule files with every duration (group interval, `for`, query ranges, and
    the windows quoted inside queries such as movingSum's '3min') multiplied by `factor`: the
    same queries and thresholds on a test's time scale."""
    target.mkdir(parents=True, exist_ok=True)
    for path in source.glob("*.yaml"):
        document = yaml.safe_load(path.read_text())
        for group in document.get("groups", []):
            group["interval"] = f"{seconds(group['interval']) * factor:g}s"
            for rule in group["rules"]:
                rule["for"] = f"{seconds(rule.get('for', '0s')) * factor:g}s"
                for item in rule["data"]:
                    window = item.get("relativeTimeRange")
                    if window:
                        item["relativeTimeRange"] = {k: v * factor for k, v in window.items()}
                    if "target" in item["model"]:
                        item["model"]["target"] = QUOTED_DURATION.sub(
                            lambda m: f"'{int(m[1]) * UNIT[m[2]] * factor:g}s'",
                            item["model"]["target"],
                        )
        (target / path.name).write_text(yaml.safe_dump(document, sort_keys=False))
    return target


def chromium(*args: str, profile: Path, timeout: float = 90) -> str:
    """Run headless Chromium once (a fresh profile); returns its stdout. Stopped by its PID
    (its whole process group: the renderer and GPU helpers it forks) if it overstays."""
    profile.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        ["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    return out


@pytest.fixture(scope="package")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """The pipeline with the example app, after a short simulated day of its users (error
    burst and rate-limit storm included, so that every panel has something to show)."""
    with ExitStack() as stack:
        setup = Live(tmp_path_factory.mktemp("grafana-live"), stack)
        plan = TrafficPlan(duration=12, users=12, peak_visits=3, error_burst=True,
                           rate_limit_storm=True, chpp_url=setup.chpp_url, seed=3)  # fmt: skip
        tagged = threading.Thread(target=TrafficGenerator(setup.tagged_url, plan).run, daemon=True)
        tagged.start()  # the tagged app's day, at the same time
        TrafficGenerator(setup.app_url, plan).run()
        tagged.join(120)
        setup.chpp.settings.rate_limit = 10_000  # the fault tests choose their own trouble
        yield setup


@pytest.fixture
def browser(tmp_path: Path):
    """`browser(*flags)`: one headless Chromium run with a fresh --user-data-dir."""
    runs = iter(range(1000))
    return lambda *args: chromium(*args, profile=tmp_path / f"profile{next(runs)}")


@pytest.fixture(scope="session")
def output_dir() -> Path:
    """test-output/ at the repository root: what a person may want to look at afterwards."""
    OUTPUT.mkdir(exist_ok=True)
    return OUTPUT
