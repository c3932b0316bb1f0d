"""`statsd-metrics up --demo`: the shipped demo app and its traffic run beside the pipeline."""

from __future__ import annotations

import random
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from statsd_metrics import Client
from statsd_metrics.cli import build_parser
from statsd_metrics.demo import Partner, create_app, serving
from statsd_metrics.supervisor.carbon_python import CarbonPython
from statsd_metrics.supervisor.layout import Layout, Ports
from statsd_metrics.supervisor.parts import DEMO_BANNER, parts
from support.pipeline import points, wait_for

PYTHON = CarbonPython(sys.executable, "3.11")
DASHBOARD_SERIES = (
    "teamapp.http.login.latency",
    "teamapp.http.squad.status.2xx.200",
    "teamapp.http.unmatched.status.4xx.404",
    "teamapp.security.login.succeeded",
    "teamapp.security.login.failed",
    "teamapp.features.sync",
    "teamapp.events.player_updates",
    "teamapp.events.player_edits",
    "teamapp.events.training_recommendations_made",
    "teamapp.users.active",
    "teamapp.api.partner.get.outcome.ok",
    "teamapp.api.partner.quota.remaining",
)


def test_demo_is_off_unless_asked():
    assert build_parser().parse_args(["up"]).demo is False
    assert build_parser().parse_args(["up", "--demo"]).demo is True
    assert "demo" not in [p.name for p in parts(Layout.build(Path("var")), PYTHON)]


def test_demo_part_feeds_the_first_aggregator_and_starts_last(tmp_path: Path):
    layout = Layout.build(tmp_path, Ports(statsd=9125, mgmt=9126), aggregators=2)
    found = parts(layout, PYTHON, demo=True)
    demo = found[-1]  # started last, stopped first: its last metrics reach a running aggregator
    assert demo.name == "demo"
    # Shipped in the package: nothing from examples/, which an installed wheel does not have.
    assert demo.argv[1:3] == ["-m", "statsd_metrics.demo"]
    assert "PYTHONPATH" not in demo.env
    assert demo.argv[demo.argv.index("--statsd-port") + 1] == "9125"
    assert {"flask", "sqlalchemy", "requests", "psutil"} <= set(demo.modules)
    assert demo.install == 'pip install "statsd-metrics[demo]"'


def test_demo_is_ready_once_it_prints_where_the_app_listens(tmp_path: Path):
    demo = parts(Layout.build(tmp_path), PYTHON, demo=True)[-1]
    assert not demo.ready()  # not started: no log
    demo.log = tmp_path / "demo.log"
    demo.log.write_text("")
    assert not demo.ready()
    demo.log.write_text(f"{DEMO_BANNER}http://127.0.0.1:5000, CHPP simulator ...\n")
    assert demo.ready()


def test_demo_without_an_aggregator_is_refused(tmp_path: Path):
    done = subprocess.run(
        [sys.executable, "-m", "statsd_metrics", "up", "--data-dir", str(tmp_path), "--demo",
         "--aggregators", "0"],
        check=False, capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 1
    assert "--demo sends to an aggregator" in done.stderr


@pytest.mark.slow
def test_up_demo_fills_graphite_on_its_own_and_stops_everything(start_up):
    up = start_up("--demo", "--flush-interval", "1").wait_ready()
    banner = wait_for(lambda: re.search(r"demo: app (http://127\.0\.0\.1:\d+)", up.stderr()),
                      what="the demo's banner on stderr")  # fmt: skip
    app_url = banner.group(1)
    assert requests.get(app_url + "/health", timeout=5).text == "ok"
    # `up` tags its aggregator's series with the host name: one more segment after the name
    for target in ("sumSeries(stats_counts.teamapp.http.*.status.*.*.*)",
                   "stats.timers.teamapp.http.login.latency.*.count",
                   "stats.gauges.teamapp.process.*.memory.rss.*"):  # fmt: skip
        wait_for(lambda t=target: [s for s in up.render(t, "-5min") if any(points(s).values())],
                 timeout=60, what=f"{target} in the render API")  # fmt: skip
    assert up.stop(signal.SIGTERM) == 0
    with pytest.raises(requests.ConnectionError):
        requests.get(app_url + "/health", timeout=2)


def test_demo_app_sends_what_the_dashboards_read(tmp_path: Path, statsd_recorder):
    """Each route of the shipped demo, through Flask's test client: the series the Service,
    Business and Quality dashboards query are sent (names as docs/metrics.md has them)."""
    rng = random.Random(5)
    client = Client(port=9, prefix="teamapp", buffered=False)
    try:
        with serving(Partner(rng).app) as partner_url:
            app = create_app(client, partner_url, rng, tmp_path / "demo.db")
            http = app.test_client()
            assert http.post("/login", data={"user": "a", "password": "right"}).status_code == 200
            assert http.post("/login", data={"user": "a", "password": "wrong"}).status_code == 401
            assert http.get("/squad?team=3").status_code == 200
            assert http.get("/training").status_code == 200
            assert http.post("/sync?team=3").status_code == 200
            assert http.post("/players/7").status_code == 200
            assert http.get("/no-such-page").status_code == 404
    finally:
        client.close()
    names = set(statsd_recorder.names())
    for name in DASHBOARD_SERIES:
        assert name in names, (name, sorted(names))
    assert any(n.startswith("teamapp.db.demo.query.") for n in names), sorted(names)
