"""The wheel as a user gets it: built from this checkout, installed into a fresh virtual
environment outside it, and run from an empty directory with no path into the checkout.

`statsd-metrics init`, `up --config-dir ... --demo` (carbon-cache, the render API with the
dashboards preview, the aggregator, the demo app), a UDP round trip through the render API,
`alerts check` and the preview pages, all from the installed files. Where a Python 3.12 is at
hand, a second environment on it runs `up` with carbon under the first one's Python 3.11
(`--carbon-python`): carbon 1.1.10 cannot run on 3.12.

Slow: it installs from PyPI (about a minute with a warm pip cache); every step is bounded.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.pipeline import RunningUp, on_this_host, points, wait_for

# Installing from PyPI takes longer than the suite's per-test limit on a cold cache.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

ROOT = Path(__file__).resolve().parents[2]
EXTRAS = "graphite,grafana,demo"
INSTALL_TIMEOUT = 900
PYENV = Path.home() / ".pyenv" / "versions"
PYTHON_312 = next(iter(sorted(PYENV.glob("3.12*/bin/python3.12"))), None)


@dataclass
class Installed:
    venv: Path
    home: Path  # an empty directory to run from

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def command(self) -> list[str]:
        return [str(self.venv / "bin" / "statsd-metrics")]

    @property
    def env(self) -> dict[str, str]:
        """No way back into the checkout: no PYTHONPATH, the venv's bin first on PATH."""
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        env["PATH"] = f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        return env

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*self.command, *args],
            check=False, capture_output=True, text=True, timeout=timeout, cwd=self.home,
            env=self.env,
        )  # fmt: skip


def _check(argv: list[str], timeout: float = INSTALL_TIMEOUT, **kwargs) -> None:
    # No PYTHONPATH: pointing into the checkout, it would make pip take the checkout's
    # statsd_metrics.egg-info for an installed statsd-metrics and skip the wheel.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=timeout,
                          env=env, **kwargs)  # fmt: skip
    assert done.returncode == 0, f"{argv}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    """Outside pytest's base temporary directory, which other pytest runs on the machine prune
    while these minutes-long tests run."""
    with tempfile.TemporaryDirectory(prefix="statsd-metrics-wheel-") as path:
        yield Path(path)


@pytest.fixture(scope="module")
def wheel(workdir: Path) -> Path:
    dist = workdir / "dist"
    _check([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
            "--wheel-dir", str(dist), str(ROOT)], timeout=300)  # fmt: skip
    (built,) = dist.glob("statsd_metrics-*.whl")
    return built


def install(wheel: Path, python: str, where: Path) -> Installed:
    venv = where / "venv"
    _check([python, "-m", "venv", str(venv)], timeout=120)
    _check([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
            "--disable-pip-version-check", f"{wheel}[{EXTRAS}]"], cwd=where)  # fmt: skip
    home = where / "empty"
    home.mkdir(parents=True)
    return Installed(venv, home)


@pytest.fixture(scope="module")
def installed(wheel: Path, workdir: Path) -> Installed:
    return install(wheel, sys.executable, workdir / "py311")


@pytest.fixture
def running(installed: Installed) -> Iterator[RunningUp]:
    """`up --config-dir conf --demo` from the installed wheel (conf written by `init`)."""
    done = installed.run("init", "conf")
    assert done.returncode == 0, done.stderr
    service = installed.home / "conf" / "grafana" / "dashboards" / "service.json"
    model = json.loads(service.read_text())
    service.write_text(json.dumps({**model, "title": EDITED_TITLE}))  # the preview shows it
    up = RunningUp(installed.home / "var", "--config-dir", "conf", "--flush-interval", "1",
                   "--demo", command=installed.command, cwd=installed.home,
                   env=installed.env)  # fmt: skip
    try:
        yield up.wait_ready(120)
    finally:
        up.stop(signal.SIGTERM)


EDITED_TITLE = "Service as edited in conf"


def round_trip(up: RunningUp, name: str, sends: int = 3) -> None:
    """Counter increments over UDP until the render API has counted all of them (they may
    fall into one flush or several)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _ in range(sends):
            sock.sendto(f"{name}:1|c".encode(), ("127.0.0.1", up.port("statsd")))
            time.sleep(0.3)

    def counted() -> float:
        series = up.render(on_this_host(f"stats_counts.{name}"), "-5min")
        return sum(sum(points(s).values()) for s in series)

    wait_for(lambda: counted() == sends, timeout=60, what=f"{sends} counts of {name}")


def test_the_wheel_holds_two_packages_and_the_configuration(wheel: Path, installed: Installed):
    site = subprocess.run(
        [str(installed.python), "-c", "import statsd_metrics, aggregator; "
         "print(statsd_metrics.__file__); print(aggregator.__file__)"],
        check=True, capture_output=True, text=True, cwd=installed.home, env=installed.env,
    ).stdout.split()  # fmt: skip
    assert all(path.startswith(str(installed.venv)) for path in site), site
    record = next(installed.venv.glob("lib/python*/site-packages/statsd_metrics-*.dist-info"))
    assert sorted((record / "top_level.txt").read_text().split()) == [
        "aggregator", "statsd_metrics"]  # fmt: skip
    conf = Path(site[0]).parent / "graphite" / "conf"
    assert not conf.is_symlink()
    for name in (
        "carbon.conf",
        "graphite-render.yaml",
        "grafana/provisioning/alerting/rules.yaml",
        "grafana/dashboards/service.json",
    ):
        assert (conf / name).is_file(), name  # fmt: skip
    assert (Path(site[1]).parent / "aggregator.toml").is_file()


def test_up_demo_alerts_and_preview_from_the_installed_wheel(installed: Installed, running):
    up = running
    stderr = up.stderr()
    assert f"run under {installed.python} (Python 3.11" in stderr
    assert str(ROOT) not in stderr

    # A UDP round trip: StatsD in, Graphite out through the render API.
    round_trip(up, "wheel.check")

    # The shipped demo fills the dashboards' series.
    requests = on_this_host("stats_counts.teamapp.http.*.status.*.*")

    def demo_requests() -> float:
        return sum(sum(points(s).values()) for s in up.render(f"sumSeries({requests})", "-5min"))

    wait_for(lambda: demo_requests() > 0, timeout=90, what="the demo's requests in the render API")

    health = up.addresses["aggregator health"][0]
    with urllib.request.urlopen(health, timeout=10) as response:
        assert json.loads(response.read())["health"] == "up"

    dashboards = up.addresses["dashboards"][0]
    with urllib.request.urlopen(dashboards, timeout=30) as response:
        index = response.read().decode()
    assert EDITED_TITLE in index  # the dashboards of --config-dir, not the shipped ones
    links = re.findall(r'href="/dashboards/([\w-]+)"', index)
    assert len(links) >= 5, index
    with urllib.request.urlopen(f"{up.render_url}/dashboards/{links[0]}", timeout=60) as page:
        assert "<img" in page.read().decode()

    env = {**installed.env, "STATSD_METRICS_PREFIX": "teamapp"}
    done = subprocess.run(
        [*installed.command, "alerts", "check", "--render-url", up.render_url, "--json"],
        check=False, capture_output=True, text=True, timeout=120, cwd=installed.home, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    states = json.loads(done.stdout)
    assert len(states) >= 6
    assert {s["state"] for s in states} <= {"Normal", "Pending", "Alerting", "NoData", "Error"}
    assert not [s for s in states if s["state"] == "Error"], states


@pytest.mark.skipif(PYTHON_312 is None, reason="no Python 3.12 under ~/.pyenv")
def test_up_on_python_312_runs_carbon_under_the_311(
    wheel: Path, installed: Installed, workdir: Path
):
    modern = install(wheel, str(PYTHON_312), workdir / "py312")
    # [graphite] offered nothing it could not install there:
    has_carbon = subprocess.run(
        [str(modern.python), "-c", "import importlib.util as u; print(u.find_spec('carbon'))"],
        check=True, capture_output=True, text=True, env=modern.env,
    ).stdout.strip()  # fmt: skip
    assert has_carbon == "None"
    up = RunningUp(modern.home / "var", "--aggregators", "1", "--flush-interval", "1",
                   "--carbon-python", str(installed.python), command=modern.command,
                   cwd=modern.home, env=modern.env)  # fmt: skip
    try:
        up.wait_ready(120)
        assert f"run under {installed.python} (Python 3.11" in up.stderr()
        round_trip(up, "modern.check")
    finally:
        assert up.stop(signal.SIGTERM) == 0
