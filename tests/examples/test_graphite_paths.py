"""docs/metrics.md against the real thing: the example app -> our aggregator -> Carbon lines.

Every Graphite path the aggregator writes for the app's metrics must match a row of the one
table in docs/metrics.md, and the rows a dashboard needs first must show up. A fake Carbon (a
TCP listener on loopback) collects the plaintext lines.
"""

import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from examples.teamapp.app import create_app
from statsd_metrics import shared_gauge
from statsd_metrics.process import ProcessCollector
from support.net import CarbonSink, free_port
from tests.examples.conftest import SECRET

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "teamapp"


def documented_paths() -> list[re.Pattern]:
    """The table's first column as regexes: `<...>` is one path segment."""
    text = (ROOT / "docs" / "metrics.md").read_text()
    table = text.split("## The table", 1)[1].split("\n## ", 1)[0]
    patterns = []
    for row in table.splitlines():
        if not row.startswith("| `stats"):
            continue
        cell = row.split(" | ")[0]
        paths = re.findall(r"`([^`]+)`", cell)
        first = paths[0]
        for written in paths:
            # `stats_counts.…` stands for the counter's count beside its rate.
            path = written if written != "stats_counts.…" else "stats_counts." + first[6:]
            path = path.replace("<prefix>", PREFIX).replace(r"gen<0\|1\|2>", "gen<n>")
            regex = re.sub(r"<[a-z_]+>", "[A-Za-z0-9_-]+", re.escape(path))
            patterns.append(re.compile(regex.replace("gen[A-Za-z0-9_-]+", "gen[012]") + "$"))
    return patterns


@pytest.fixture
def aggregator(tmp_path):
    carbon = CarbonSink()
    port, mgmt = free_port(), free_port()
    config = tmp_path / "aggregator.toml"
    config.write_text(f'spool_dir = "{tmp_path / "spool"}"\n')
    proc = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "--config", str(config), "--port", str(port),
         "--graphite-port", str(carbon.port), "--flush-interval", "1", "--mgmt-port", str(mgmt)],
        cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{mgmt}/health", timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the aggregator did not start") from None
                time.sleep(0.1)
        yield port, carbon
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        carbon.close()


@pytest.mark.slow
def test_every_path_the_app_produces_is_documented(aggregator, chpp, tmp_path):
    port, carbon = aggregator
    app = create_app({
        "CHPP_URL": chpp.url,
        "STATSD_HOST": "127.0.0.1",
        "STATSD_PORT": port,
        "STATSD_METRICS_USER_HASH_SECRET": SECRET,
        "DATABASE_URL": f"sqlite:///{tmp_path}/teamapp.db",
        "DEMO_USERS": 3,
        "RATE_LIMITS": {"login": (100, 60.0), "sync": (1, 60.0)},
    })  # fmt: skip
    client = app.extensions["statsd_metrics"].client
    web = app.test_client()
    web.post("/login", data={"username": "manager1", "password": "nope"})
    web.post("/login", data={"username": "manager1", "password": "pass-1"})
    web.post("/sync")
    web.post("/sync")  # the app's own rate limit
    web.get("/squad")
    web.post("/players/100101", data={"position": "keeper", "notes": ""})
    web.get("/training")
    web.get("/wp-login.php")
    ProcessCollector(client, host="e2e").collect()
    shared_gauge.report_all()
    client.close()  # sends the pseudonyms too, which otherwise wait for their 10 s interval

    wanted = {
        f"stats.timers.{PREFIX}.http.login.latency.upper_90",
        f"stats.timers.{PREFIX}.http.squad.latency.count_ps",
        f"stats.{PREFIX}.http.squad.status.2xx.200",
        f"stats_counts.{PREFIX}.http.unmatched.status.4xx.404",
        f"stats_counts.{PREFIX}.http.sync.status.4xx.429",
        f"stats.timers.{PREFIX}.http.squad.response_bytes.mean",
        f"stats.timers.{PREFIX}.db.teamapp.query.select.count",
        f"stats.gauges.{PREFIX}.db.teamapp.pool.size",
        f"stats.timers.{PREFIX}.api.chpp.players.latency.mean",
        f"stats_counts.{PREFIX}.api.chpp.players.outcome.ok",
        f"stats.gauges.{PREFIX}.api.chpp.quota.remaining",
        f"stats.sets.{PREFIX}.users.active.count",
        f"stats_counts.{PREFIX}.features.squad_view",
        f"stats_counts.{PREFIX}.events.player_updates",
        f"stats_counts.{PREFIX}.events.player_edits",
        f"stats_counts.{PREFIX}.events.training_recommendations_made",
        f"stats_counts.{PREFIX}.security.login.succeeded",
        f"stats_counts.{PREFIX}.security.login.failed",
        f"stats_counts.{PREFIX}.security.rate_limited.sync",
        f"stats.gauges.{PREFIX}.process.e2e.memory.rss",
    }
    deadline = time.monotonic() + 15
    while not wanted <= set(carbon.values()) and time.monotonic() < deadline:
        time.sleep(0.2)
    app.extensions["teamapp"].chpp.close()
    client.close()
    values = carbon.values()
    assert wanted - set(values) == set()
    assert values[f"stats.gauges.{PREFIX}.db.teamapp.pool.size"] == 5
    assert values[f"stats.sets.{PREFIX}.users.active.count"] >= 1

    patterns = documented_paths()
    assert len(patterns) > 30
    assert any(
        rx.match(f"stats.timers.{PREFIX}.http.any_route.latency.upper_90") for rx in patterns
    )
    assert not any(rx.match(f"stats_counts.{PREFIX}.http.login.requests") for rx in patterns)
    app_path = re.compile(rf"^(stats_counts|stats|stats\.(timers|gauges|sets))\.{PREFIX}\.")
    ours = [path for path in values if app_path.match(path)]
    assert len(ours) > 100
    undocumented = [p for p in ours if not any(rx.match(p) for rx in patterns)]
    assert undocumented == []
