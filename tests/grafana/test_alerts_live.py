"""The alert rules against the live pipeline: faults injected through the example app and the
pipeline, and exactly the right rules fire, then recover.

The rules are the shipped files with every duration scaled (a minute lasts two seconds, see
conftest.TIME_SCALE): the same queries, reducers, thresholds and no-data handling. Each
scenario polls the rules' states (bounded) until the expected ones fire, checking at every
poll that no other rule so much as goes pending, then removes the fault and waits for every
rule to be Normal again.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from statsd_metrics.grafana.alerts.evaluate import (
    ALERTING,
    ERROR,
    NORMAL,
    PENDING,
    HttpRenderAPI,
    check,
)
from statsd_metrics.grafana.alerts.rules import load

pytestmark = pytest.mark.slow
FIVE_XX = "statsd-metrics-5xx-ratio"
LATENCY = "statsd-metrics-p90-latency"
API = "statsd-metrics-external-api"
NO_DATA = "statsd-metrics-no-data"
BAD_LINES = "statsd-metrics-bad-lines"
SPOOL = "statsd-metrics-spool"
POLL = 0.5
REPORT = Path(__file__).resolve().parents[2] / "test-output" / "alerts-check-live.txt"


class Watch:
    def __init__(self, live) -> None:
        self.rules = load(live.rules_dir, {})
        self.api = HttpRenderAPI(live.render_url)
        self.history: list[dict[str, str]] = []

    def states(self) -> dict[str, str]:
        states = {s.rule.uid: s.state for s in check(self.rules, self.api)}
        self.history.append(states)
        return states

    def steady(self, timeout: float, allowed: set[str] | None = None) -> None:
        """Wait until every rule has stayed Normal for a whole window (the longest rule's,
        10 s scaled): a ratio dying away can dip under its threshold and come back. Rules
        outside `allowed` (if given) must not even go pending meanwhile."""
        # The rules that read the last point of an hour (no data, spool) are calm at once.
        calm_for = max(r.nodes["A"].start for r in self.rules if r.nodes["B"].reducer != "last")
        deadline = time.monotonic() + timeout
        calm_since = time.monotonic()
        while time.monotonic() - calm_since < calm_for:
            states = self.states()
            if allowed is not None:
                active = {uid for uid, state in states.items() if state != NORMAL}
                assert active <= allowed, f"unexpected rules active: {states}"
            if set(states.values()) != {NORMAL}:
                calm_since = time.monotonic()
            assert time.monotonic() < deadline, f"not steady in {timeout} s: {self.history[-1]}"
            time.sleep(POLL)

    def recovers(self, allowed: set[str], timeout: float = 60) -> None:
        """Back to all Normal without any rule outside `allowed` on the way, and staying so."""
        self.until(set(), allowed, timeout)
        self.steady(timeout, allowed)

    def record(self, live, moment: str) -> None:
        """`alerts check`'s table at this moment, kept in test-output/alerts-check-live.txt
        (what the documentation and the closing note quote)."""
        with REPORT.open("a") as report:
            report.write(f"## {moment}\n{alerts_check(live)}\n\n")

    def until(self, firing: set[str], allowed: set[str], timeout: float = 60) -> dict[str, str]:
        """Poll until exactly `firing` is Alerting (all Normal if empty); every poll on the way
        must keep the rules outside `allowed` Normal."""
        deadline = time.monotonic() + timeout
        while True:
            states = self.states()
            assert ERROR not in states.values(), states
            active = {uid for uid, state in states.items() if state in (PENDING, ALERTING)}
            assert active <= allowed, f"unexpected rules active: {states}"
            alerting = {uid for uid, state in states.items() if state == ALERTING}
            done = alerting == firing if firing else set(states.values()) == {NORMAL}
            if done:
                return states
            if time.monotonic() > deadline:
                raise AssertionError(f"wanted {firing or 'all Normal'} in {timeout} s: {states}")
            time.sleep(POLL)


@pytest.fixture(scope="module")
def users(live):
    users = live.users_factory()
    users.start()
    yield users
    users.close()


@pytest.fixture(scope="module")
def watch(live, users) -> Watch:
    watch = Watch(live)
    watch.steady(timeout=120)  # the simulated day's storms have passed
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text("# alerts check on the live pipeline (durations scaled 1/30)\n\n")
    watch.record(live, "steady traffic")
    return watch


def alerts_check(live, *args: str) -> str:
    """`statsd-metrics alerts check` itself (python -m statsd_metrics), on the scaled rule files."""
    result = subprocess.run(
        [sys.executable, "-m", "statsd_metrics", "alerts", "check", "--render-url", live.render_url,
         "--rules", str(live.rules_dir), *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_all_six_rules_are_normal_under_steady_traffic(watch):
    assert {rule.title for rule in watch.rules} == {
        "5xx ratio high",
        "p90 latency high",
        "External API failing or rate-limited",
        "No data from the application",
        "Aggregator dropping lines",
        "Spool growing",
    }
    assert set(watch.states().values()) == {NORMAL}


def test_error_burst_fires_only_the_5xx_ratio_then_recovers(live, watch):
    before = time.time()
    live.faults.error_rate = 0.5  # half the squad and training views raise
    try:
        watch.until({FIVE_XX}, allowed={FIVE_XX})
        watch.record(live, "error burst in the app: during")
        # The command line says the same, and --at reads the past: all was well before.
        now = {r["uid"]: r["state"] for r in json.loads(alerts_check(live, "--json"))}
        assert now == {uid: ALERTING if uid == FIVE_XX else NORMAL for uid in now}
        then = json.loads(alerts_check(live, "--json", "--at", str(before)))
        assert {r["state"] for r in then} == {NORMAL}
        table = alerts_check(live)
        # one instance per application: the faulty one fires, its tagged twin does not
        lines = {
            name: next(line for line in table.splitlines() if f"5xx ratio high {name}" in line)
            for name in ("{__name__=teamapp}", "{__name__=tagapp}")
        }
        assert lines["{__name__=teamapp}"].startswith("Alerting")
        assert lines["{__name__=tagapp}"].startswith("Normal")
    finally:
        live.faults.error_rate = 0.0
    watch.recovers({FIVE_XX})
    watch.record(live, "error burst in the app: after recovery")


def test_external_api_outage_fires_only_the_api_rule_then_recovers(live, watch):
    """CHPP refuses connections: every sync fails (the app answers 502), but syncs are a small
    share of the traffic, so the 5xx ratio stays under its threshold: the API rule is the one
    that tells."""
    live.chpp_down()
    try:
        watch.until({API}, allowed={API})
        watch.record(live, "external API (CHPP) down: during")
    finally:
        live.chpp_up()
    watch.recovers({API})
    watch.record(live, "external API (CHPP) down: after recovery")


def test_bad_lines_fire_only_the_aggregator_rule_then_recover(live, watch):
    live.aggregator.send(b"no colon here", b"teamapp.x:1|zz", b"teamapp.y:abc|c")
    watch.until({BAD_LINES}, allowed={BAD_LINES})
    watch.record(live, "bad lines sent to the aggregator: during")
    watch.recovers({BAD_LINES})
    watch.record(live, "bad lines sent to the aggregator: after recovery")


def test_carbon_unreachable_fires_spool_and_no_data_then_recovers(live, watch):
    """From Graphite, an aggregator that spools is silent: its spool gauge and everything it
    carries arrive only with the replay. The spool rule fires on that silence (a missing value
    after the series existed reads 1), and so does the application's heartbeat (no progress);
    nothing else does."""
    live.forwarder.cut()
    try:
        watch.until({SPOOL, NO_DATA}, allowed={SPOOL, NO_DATA}, timeout=60)
        watch.record(live, "Carbon unreachable from the aggregator: during")
    finally:
        live.forwarder.restore()
    # The aggregator reconnects after its backoff (up to 30 s) and replays the spool, whose
    # gauge then shows it grew; the spool rule resolves once the spool has drained.
    watch.recovers({SPOOL, NO_DATA}, timeout=120)
    watch.record(live, "Carbon unreachable from the aggregator: after recovery")
    replayed = HttpRenderAPI(live.render_url).render(
        "stats.gauges.statsd.spool.flushes", int(time.time()) - 120, int(time.time()), 1000
    )
    assert max(v for v, _ in replayed[0]["datapoints"] if v is not None) >= 3


def test_application_going_silent_fires_only_no_data_then_recovers(live, watch, users):
    users.stop()
    live.app_silent()
    try:
        watch.until({NO_DATA}, allowed={NO_DATA})
        watch.record(live, "application silent: during")
    finally:
        live.app_sending()
        users.start()
    watch.recovers({NO_DATA})
    watch.record(live, "application silent: after recovery")
    assert LATENCY not in {
        uid for states in watch.history for uid, s in states.items() if s != NORMAL
    }
