"""The demo entry point the pipeline launches: it runs, sends metrics, and stops cleanly."""

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]


def start_demo(port: int, *args: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "examples.teamapp.demo", "--statsd-port", str(port),
           "--process-interval", "0.5", *args]  # fmt: skip
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL, text=True)  # fmt: skip


def urls(banner: str) -> list[str]:
    return re.findall(r"http://127\.0\.0\.1:\d+", banner)


def assert_down(url: str) -> None:
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/health", timeout=2)


@pytest.mark.slow
def test_demo_runs_for_its_duration_and_stops_its_children(sink):
    demo = start_demo(sink.port, "--duration", "6", "--day", "3", "--users", "6")
    try:
        out, _ = demo.communicate(timeout=90)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert demo.returncode == 0, out
    banner = out.splitlines()[0]
    assert "demo: app http://127.0.0.1:" in banner
    assert re.search(r"day 2: \d+ visits", out)
    for url in urls(banner):  # the app and the CHPP simulator are gone
        assert_down(url)
    names = {line.split(":")[0] for line in sink.lines()}
    for family in ("teamapp.http.", "teamapp.process.", "teamapp.db.", "teamapp.users.active",
                   "teamapp.api.chpp."):  # fmt: skip
        assert any(n.startswith(family) for n in names), family


@pytest.mark.slow
def test_demo_stops_cleanly_on_sigterm(sink):
    demo = start_demo(sink.port, "--duration", "600")
    try:
        banner = demo.stdout.readline()
        assert banner.startswith("demo: app"), banner
        requests.get(urls(banner)[0] + "/health", timeout=5).raise_for_status()
        demo.send_signal(signal.SIGTERM)
        demo.wait(timeout=30)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        demo.stdout.close()
    assert demo.returncode == 0
    for url in urls(banner):
        assert_down(url)


@pytest.mark.slow
def test_children_die_with_a_killed_demo(sink):
    demo = start_demo(sink.port, "--duration", "600")
    try:
        banner = demo.stdout.readline()
        assert banner.startswith("demo: app"), banner
        demo.kill()  # SIGKILL: no chance to stop its children itself
        demo.wait(timeout=10)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        demo.stdout.close()
    for url in urls(banner):  # the kernel told them (PR_SET_PDEATHSIG)
        wait_for_down(url)


def wait_for_down(url: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url + "/health", timeout=1)
        except requests.ConnectionError:
            return
        time.sleep(0.2)
    raise AssertionError(f"{url} still answers after its demo was killed")
