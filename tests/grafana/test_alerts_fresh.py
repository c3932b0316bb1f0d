"""The shipped rules on a pipeline with no data yet, and for applications that have no external
API, with and without constant tags and a host tag: every rule Normal, none in Error (a render
API error would page everyone with DatasourceError alerts), and the table is never broken by a
traceback. Then a 5xx burst of one tagged application fires the 5xx rule for that application
only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from statsd_metrics import Client
from statsd_metrics.grafana.alerts.evaluate import HttpRenderAPI, check
from statsd_metrics.grafana.alerts.rules import RULES_DIR, load
from support.pipeline import RunningUp, wait_for

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
REPORT = ROOT / "test-output" / "alerts-check-fresh.txt"


@pytest.fixture
def up(tmp_path: Path) -> Iterator[RunningUp]:
    running = RunningUp(tmp_path / "var", "--flush-interval", "1")
    try:
        yield running.wait_ready()
    finally:
        running.stop()


def alerts_check(up: RunningUp, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("STATSD_METRICS_PREFIX", None)  # the rules need none
    return subprocess.run(
        [sys.executable, "-m", "statsd_metrics", "alerts", "check", "--render-url", up.render_url,
         *args],
        check=False, capture_output=True, text=True, timeout=120, env=env, cwd=ROOT,
    )  # fmt: skip


def states(up: RunningUp) -> dict[tuple[str, tuple], str]:
    done = alerts_check(up, "--json")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return {
        (rule["title"], tuple(sorted(i["labels"].items()))): i["state"]
        for rule in json.loads(done.stdout)
        for i in rule["instances"]
    }


def test_every_rule_is_normal_on_a_fresh_pipeline(up):
    fresh = states(up)
    assert {title for title, _ in fresh} == {r.title for r in load(RULES_DIR, {})}
    assert set(fresh.values()) == {"Normal"}, fresh
    table = alerts_check(up)
    assert table.returncode == 0
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(f"# alerts check on a fresh pipeline\n\n{table.stdout}\n")
    assert table.stdout.splitlines()[0].split() == ["STATE", "RULE", "VALUE", "SINCE"]
    assert "Error" not in table.stdout


def test_apps_without_external_api_with_and_without_tags_are_normal_then_5xx_fires(up):
    port = up.port("statsd")
    apps = {
        "plain": {},
        "onetag": {"env": "prod"},
        "twotags": {"env": "prod", "region": "eu"},
    }
    clients = {
        name: Client("127.0.0.1", port, prefix=name, tags=tags) for name, tags in apps.items()
    }

    def traffic(seconds: float, five_xx: str = "") -> None:
        deadline = time.monotonic() + seconds
        uptime = 100.0
        while time.monotonic() < deadline:
            uptime += 0.25
            for name, client in clients.items():
                client.timing("http.index.latency", 12.0)
                bad = name == five_xx
                client.incr(f"http.index.status.{'5xx.500' if bad else '2xx.200'}")
                client.gauge("process.web1.uptime", uptime)
                client.flush()
            time.sleep(0.25)

    traffic(6)
    quiet = states(up)
    apps_seen = {
        dict(labels).get("__name__") for (title, labels) in quiet if title == "p90 latency high"
    }
    assert apps_seen == set(apps), quiet  # one instance per application, tags or none
    assert set(quiet.values()) == {"Normal"}, quiet
    with REPORT.open("a") as report:
        report.write(
            "\n# three applications without an external API, 0, 1 and 2 constant tags\n\n"
            + alerts_check(up).stdout
        )

    # Every request of the two-tag application fails: its 5xx ratio instance leaves Normal
    # (Pending: `for` is 2 minutes), the others stay Normal.
    traffic(4, five_xx="twotags")

    def ratio() -> dict[tuple, str]:
        found = states(up)
        return {
            labels: state for (title, labels), state in found.items() if title == "5xx ratio high"
        }

    seen = wait_for(lambda: "Pending" in ratio().values() and ratio(), 30, "the 5xx rule pending")
    # The one application with 5xx is the only series, so Grafana gives it no name label; the
    # others have no 5xx series at all (no data for them, not an error).
    assert seen == {(): "Pending"}, seen
    rules = load(RULES_DIR, {})
    assert all(s.state != "Error" for s in check(rules, HttpRenderAPI(up.render_url)))
    for client in clients.values():
        client.close()
