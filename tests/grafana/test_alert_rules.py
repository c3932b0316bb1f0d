"""The alert evaluator against canned render answers and an injected clock: Grafana's reduce,
threshold and state machine, and the shipped rule files."""

from __future__ import annotations

import http.server
import math
import threading
import urllib.parse
from collections.abc import Callable
from pathlib import Path

import pytest

from statsd_metrics.grafana.alerts import evaluate
from statsd_metrics.grafana.alerts.cli import table
from statsd_metrics.grafana.alerts.evaluate import (
    ALERTING,
    ERROR,
    NO_DATA,
    NORMAL,
    PENDING,
    HttpRenderAPI,
    QueryError,
    evaluate_once,
    fix_interval_format,
    reduce_values,
    rule_state,
    threshold_holds,
)
from statsd_metrics.grafana.alerts.rules import (
    RULES_DIR,
    Query,
    Reduce,
    Rule,
    RuleError,
    Threshold,
    load,
    seconds,
)

STEP = 10
NOW = 1_800_000_000  # an evaluation time on the 10 s grid


class FakeRender:
    """A render API whose single series is `value(ts)` on a 10 s grid; records each request."""

    def __init__(self, value: Callable[[int], float | None] | None, tags: dict | None = None):
        self.value = value
        self.tags = tags
        self.requests: list[tuple[str, int, int, int]] = []

    def render(self, target: str, start: int, end: int, max_data_points: int) -> object:
        self.requests.append((target, start, end, max_data_points))
        if self.value is None:
            return []
        first = start - start % STEP + STEP
        series = {
            "target": target,
            "datapoints": [[self.value(ts), ts] for ts in range(first, end + 1, STEP)],
        }
        if self.tags is not None:
            series["tags"] = self.tags
        return [series]


def make_rule(
    *,
    reducer: str = "mean",
    mode: str = "dropNN",
    kind: str = "gt",
    params: tuple[float, ...] = (0.5,),
    pending: float = 120,
    interval: float = 60,
    no_data: str = "NoData",
    exec_err: str = "Error",
) -> Rule:
    return Rule(
        uid="r",
        title="r",
        group="g",
        interval=interval,
        condition="C",
        nodes={
            "A": Query("A", "x.y", start=300),
            "B": Reduce("B", "A", reducer, mode),
            "C": Threshold("C", "B", kind, params),
        },
        pending=pending,
        no_data_state=no_data,
        exec_err_state=exec_err,
    )


# -- reduce and threshold: Grafana's semantics ------------------------------------------------


@pytest.mark.parametrize(
    ("values", "reducer", "mode", "expected"),
    [
        ([1.0, 2.0, 3.0], "mean", "strict", 2.0),
        ([1.0, None, 3.0], "mean", "strict", math.nan),  # a null poisons strict mode
        ([1.0, None, 3.0], "mean", "dropNN", 2.0),
        ([1.0, None, 3.0], "sum", "replaceNN", 4.0),  # null replaced by 0
        ([1.0, 3.0, None], "last", "strict", None),  # last is the null itself
        ([1.0, 3.0, None], "last", "dropNN", 3.0),
        ([None, None], "max", "dropNN", None),  # nothing left: no number
        ([None, None], "count", "strict", 2.0),  # count counts nulls
        ([], "sum", "strict", 0.0),
        ([], "mean", "strict", math.nan),
        ([4.0, 1.0, 3.0, 2.0], "median", "strict", 2.5),
        ([4.0, 1.0, math.inf], "min", "dropNN", 1.0),
        ([None], "max", "replaceNN", 0.0),
    ],
)
def test_reduce_matches_grafana(values, reducer, mode, expected):
    result = reduce_values(values, reducer, mode, 0.0)
    if isinstance(expected, float) and math.isnan(expected):
        assert math.isnan(result)
    else:
        assert result == expected


def test_threshold_predicates_and_nan():
    assert threshold_holds("gt", (1,), 2)
    assert not threshold_holds("gt", (1,), 1)
    assert threshold_holds("gte", (1,), 1)
    assert threshold_holds("lt", (1,), 0.5)
    assert threshold_holds("within_range", (0, 10), 5)
    assert not threshold_holds("within_range", (0, 10), 10)
    assert threshold_holds("outside_range_included", (0, 10), 10)
    assert not threshold_holds("gt", (1,), math.nan)  # Go: comparisons with NaN are false
    assert threshold_holds("ne", (1,), math.nan)


def test_fix_interval_format_like_grafana():
    assert fix_interval_format("summarize(a, '5m', 'sum')") == "summarize(a, '5min', 'sum')"
    assert fix_interval_format("summarize(a, '1M')") == "summarize(a, '1mon')"
    assert fix_interval_format("a.5m.b") == "a.5m.b"


# -- one evaluation ---------------------------------------------------------------------------


def test_one_evaluation_queries_the_relative_range_and_reduces():
    api = FakeRender(lambda ts: 1.0 if ts >= NOW - 100 else 0.0)
    (result,) = evaluate_once(make_rule(params=(0.3,)), api, NOW)
    assert api.requests == [("x.y", NOW - 300, NOW, 43200)]
    assert result.state == ALERTING  # 11 of the 30 points are 1
    assert result.value == pytest.approx(11 / 30)
    assert evaluate_once(make_rule(params=(0.4,)), api, NOW)[0].state == NORMAL


class Named(FakeRender):
    """Several untagged series, named `names[i]`, each `value(ts) + i`."""

    def __init__(self, value, names):
        super().__init__(value)
        self.names = names

    def render(self, target, start, end, mdp):
        self.requests.append((target, start, end, mdp))
        first = start - start % STEP + STEP
        return [
            {"target": name,
             "datapoints": [[self.value(ts, name), ts] for ts in range(first, end + 1, STEP)]}
            for name in self.names
        ]  # fmt: skip


def test_no_series_is_nodata_and_same_named_untagged_series_are_an_error():
    assert [r.state for r in evaluate_once(make_rule(), FakeRender(None), NOW)] == [NO_DATA]
    (result,) = evaluate_once(make_rule(), Named(lambda ts, n: 1.0, ["a", "a"]), NOW)
    assert result.state == ERROR
    assert "cannot be told apart" in result.error


def test_several_untagged_series_are_instances_named_by_their_series():
    # Before: any two untagged series were an Error. Grafana labels each __name__=<name>.
    api = Named(lambda ts, name: 1.0 if name == "shop" else 0.0, ["blog", "shop"])
    results = evaluate_once(make_rule(), api, NOW)
    assert {r.labels: r.state for r in results} == {
        (("__name__", "blog"),): NORMAL,
        (("__name__", "shop"),): ALERTING,
    }
    # one untagged series keeps no labels at all
    (single,) = evaluate_once(make_rule(), Named(lambda ts, n: 1.0, ["shop"]), NOW)
    assert single.labels == ()


def test_tagged_series_are_instances_labelled_by_their_tags():
    class Hosts(FakeRender):
        def render(self, target, start, end, mdp):
            return [
                {"target": f"h{n}", "tags": {"name": "x", "host": f"h{n}", "n": n},
                 "datapoints": [[float(n), end]]}
                for n in (0, 1)
            ]  # fmt: skip

    results = evaluate_once(make_rule(), Hosts(None), NOW)
    assert {r.labels: r.state for r in results} == {
        (("host", "h0"), ("n", "0"), ("name", "h0")): NORMAL,
        (("host", "h1"), ("n", "1"), ("name", "h1")): ALERTING,
    }


def test_a_failing_render_api_is_an_error_and_a_null_timestamp_too():
    class Down:
        def render(self, *args):
            raise QueryError("render API answered 500")

    (result,) = evaluate_once(make_rule(), Down(), NOW)
    assert (result.state, result.error) == (ERROR, "render API answered 500")

    class NullTime(FakeRender):
        def render(self, *args):
            return [{"target": "x", "datapoints": [[1.0, None]]}]

    assert evaluate_once(make_rule(), NullTime(None), NOW)[0].state == ERROR


# -- the state machine over the pending period --------------------------------------------------


def test_pending_then_alerting_after_for_then_normal_again():
    start = NOW  # the value jumps to 1 at NOW; the 5 min mean passes 0.5 after 150 s
    api = FakeRender(lambda ts: 1.0 if ts >= start else 0.0)
    rule = make_rule(pending=120)

    def state(at):
        (instance,) = rule_state(rule, api, at).instances
        return instance

    assert state(NOW + 120).state == NORMAL  # mean 12/30
    assert state(NOW + 180).state == PENDING  # first true at +180 (mean 18/30)
    assert state(NOW + 240).state == PENDING  # true for 60 s of 120
    firing = state(NOW + 300)
    assert firing.state == ALERTING
    assert firing.since == NOW + 300
    assert firing.value == pytest.approx(30 / 30)

    recovered = FakeRender(lambda ts: 1.0 if start <= ts < NOW + 300 else 0.0)
    assert rule_state(rule, recovered, NOW + 480).instances[0].state == NORMAL


def test_for_zero_fires_at_the_first_true_evaluation():
    api = FakeRender(lambda ts: 1.0)
    (instance,) = rule_state(make_rule(pending=0), api, NOW).instances
    assert instance.state == ALERTING
    # no pending period, but the two intervals that decide whether a series went missing
    assert [r[2] for r in api.requests] == [NOW - 120, NOW - 60, NOW]


def test_a_single_false_evaluation_restarts_the_pending_period():
    # true everywhere but in the window evaluated at NOW + 60 (a 30 s window for the test)
    rule = make_rule(pending=120, reducer="max", params=(0.5,))
    rule = Rule(**{**rule.__dict__, "nodes": {**rule.nodes, "A": Query("A", "x.y", start=30)}})
    api = FakeRender(lambda ts: 0.0 if NOW + 40 <= ts <= NOW + 60 else 1.0)
    assert rule_state(rule, api, NOW).instances[0].state == ALERTING
    assert rule_state(rule, api, NOW + 60).instances[0].state == NORMAL
    assert rule_state(rule, api, NOW + 120).instances[0].state == PENDING
    assert rule_state(rule, api, NOW + 180).instances[0].state == PENDING
    assert rule_state(rule, api, NOW + 240).instances[0].state == ALERTING


@pytest.mark.parametrize(
    ("no_data", "expected"),
    [("NoData", NO_DATA), ("OK", NORMAL), ("Alerting", ALERTING), ("KeepLast", NORMAL)],
)
def test_no_data_state_mapping(no_data, expected):
    rule = make_rule(no_data=no_data, pending=120)
    (instance,) = rule_state(rule, FakeRender(None), NOW).instances
    assert instance.state == expected


def test_no_data_alerting_goes_through_pending_too():
    rule = make_rule(no_data="Alerting", pending=120)
    api = FakeRender(lambda ts: None if ts > NOW - 310 else 0.0)  # silent from NOW - 300 on
    assert rule_state(rule, api, NOW - 60).instances[0].state == NORMAL
    assert rule_state(rule, api, NOW).instances[0].state == PENDING
    assert rule_state(rule, api, NOW + 120).instances[0].state == ALERTING


def test_exec_error_state_alerting():
    class Down:
        def render(self, *args):
            raise QueryError("refused")

    rule = make_rule(exec_err="Alerting", pending=0)
    assert rule_state(rule, Down(), NOW).state == ALERTING
    assert rule_state(make_rule(), Down(), NOW).state == ERROR


def test_a_missing_series_is_resolved_after_two_intervals_not_at_once():
    # Before: an instance whose series vanished was dropped at the next evaluation.
    gone = NOW + 60  # "blog" answers until NOW, then its series is missing
    rule = make_rule(pending=0, params=(0.5,))

    class Vanishing(Named):
        def render(self, target, start, end, mdp):
            answer = super().render(target, start, end, mdp)
            return [s for s in answer if s["target"] == "shop" or end < gone]

    api = Vanishing(lambda ts, name: 1.0, ["blog", "shop"])

    def blog(at):
        states = {i.labels: i for i in rule_state(rule, api, at).instances}
        return states.get((("__name__", "blog"),))

    assert blog(NOW).state == ALERTING
    assert blog(NOW + 60).state == ALERTING  # missing once: kept as it was
    resolved = blog(NOW + 120)  # two intervals after it was last seen
    assert (resolved.state, resolved.error, resolved.since) == (NORMAL, "missing series", NOW + 120)
    assert blog(NOW + 180) is None  # then forgotten


# -- rule files -------------------------------------------------------------------------------

SIX = {
    "5xx ratio high",
    "p90 latency high",
    "External API failing or rate-limited",
    "No data from the application",
    "Aggregator dropping lines",
    "Spool growing",
}


def test_the_shipped_rules_need_no_variable_and_cover_every_application():
    rules = load(RULES_DIR, {})
    assert {r.title for r in rules} == SIX
    for rule in rules:
        assert rule.condition == "C"
        assert rule.pending >= rule.interval  # every rule waits at least one evaluation
        for node in rule.nodes.values():
            if isinstance(node, Query):
                assert "$" not in node.target  # Grafana would send it to the render API as is


RULE_FILE = """
apiVersion: 1
groups:
  - orgId: 1
    name: g
    folder: f
    interval: 30s
    rules:
      - uid: u
        title: t ${P}
        labels: {team: "${P}", cost: "$$5"}
        condition: C
        data:
          - refId: A
            relativeTimeRange: {from: 600, to: 60}
            datasourceUid: ds
            model: {refId: A, target: "$${PRICE}.${P}.x"}
          - refId: B
            datasourceUid: __expr__
            model: {refId: B, type: reduce, expression: A, reducer: last}
          - refId: C
            datasourceUid: __expr__
            model:
              refId: C
              type: %s
              expression: B
              conditions: [{evaluator: {type: lt, params: [1]}}]
        for: 1m30s
"""


def test_variables_are_expanded_in_the_rules_own_fields_never_in_models(tmp_path):
    # Before: the whole group was expanded, models included; Grafana leaves models raw.
    (tmp_path / "rules.yaml").write_text(RULE_FILE % "threshold")
    (rule,) = load(tmp_path, {"P": "app"})
    assert (rule.interval, rule.pending) == (30, 90)
    assert rule.title == "t app"
    assert rule.labels == {"team": "app", "cost": "$5"}
    assert rule.nodes["A"] == Query("A", "$${PRICE}.${P}.x", start=600, end=60)
    assert rule.nodes["B"] == Reduce("B", "A", "last", "strict")
    assert (rule.no_data_state, rule.exec_err_state) == ("NoData", "Error")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("90s", 90), ("5m", 300), ("1h30m", 5400), ("0", 0), ("500ms", 0.5),
     ("1.5m", None), ("60", None), ("30m1h", None), ("5m5m", None), ("", None)],
)  # fmt: skip
def test_durations_use_grafanas_parser(text, expected):
    # Before: 1.5m and a bare 60 were taken; Grafana refuses both and the file does not load.
    if expected is None:
        with pytest.raises(ValueError, match="not a Grafana duration"):
            seconds(text)
    else:
        assert seconds(text) == expected


def test_a_fractional_for_stops_the_file_naming_the_rule(tmp_path):
    (tmp_path / "rules.yaml").write_text((RULE_FILE % "threshold").replace("1m30s", "1.5m"))
    with pytest.raises(RuleError, match=r"rule 't app'.*1\.5m"):
        load(tmp_path, {"P": "app"})


def test_a_query_without_relative_time_range_is_refused(tmp_path):
    # Before: a missing relativeTimeRange quietly meant the last 10 minutes.
    text = (RULE_FILE % "threshold").replace("relativeTimeRange: {from: 600, to: 60}", "x: 1")
    (tmp_path / "rules.yaml").write_text(text)
    with pytest.raises(RuleError, match="relativeTimeRange"):
        load(tmp_path, {"P": "app"})


def test_unsupported_expressions_are_refused_by_name(tmp_path):
    (tmp_path / "rules.yaml").write_text(RULE_FILE % "math")
    with pytest.raises(RuleError, match=r"rule 't app'.*'math' is not supported"):
        load(tmp_path, {"P": "app"})


def test_an_empty_directory_is_an_error(tmp_path):
    with pytest.raises(RuleError, match="no rule files"):
        load(tmp_path, {})


# -- the HTTP request, as Grafana's backend sends it ------------------------------------------


def test_http_render_api_posts_what_grafana_backend_posts():
    seen: list[tuple[str, str, bytes]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen.append((self.path, self.headers["Content-Type"], body))
            payload = b'[{"target": "a b", "datapoints": [[1.5, 10], [null, 20]]}]'
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        api = HttpRenderAPI(f"http://127.0.0.1:{server.server_port}/")
        answer = api.render("sumSeries(a.*, b)", 100, 400, 43200)
    finally:
        server.shutdown()
        server.server_close()
    ((path, ctype, body),) = seen
    assert (path, ctype) == ("/render", "application/x-www-form-urlencoded")
    assert (
        body
        == b"format=json&from=100&maxDataPoints=43200&target=sumSeries%28a.%2A%2C+b%29&until=400"
    )
    assert urllib.parse.parse_qs(body.decode())["target"] == ["sumSeries(a.*, b)"]
    assert evaluate.parse_series(answer)[0].values == [1.5, None]


def test_a_render_api_traceback_is_one_line_of_the_table():
    # Before: graphite-render's 500 page (a whole traceback) went into the error verbatim and
    # broke the `alerts check` table over many lines.
    page = (
        b'<html><pre>Traceback (most recent call last):\n  File "app.py", line 1\n'
        b"    raise ValueError\nZeroDivisionError: float division by zero\n</pre></html>"
    )

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(500)
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        api = HttpRenderAPI(f"http://127.0.0.1:{server.server_port}")
        state = rule_state(make_rule(pending=0), api, NOW)
    finally:
        server.shutdown()
        server.server_close()
    (instance,) = state.instances
    assert instance.state == ERROR
    assert instance.error == ("render API answered 500: ZeroDivisionError: float division by zero")
    rows = table([state]).splitlines()
    assert len(rows) == 2
    assert rows[1].startswith("Error")


def test_http_render_api_names_an_unreachable_server():
    api = HttpRenderAPI("http://127.0.0.1:9", timeout=2)
    with pytest.raises(QueryError, match=r"127\.0\.0\.1:9"):
        api.render("a", 0, 1, 1)


def test_rules_dir_is_the_provisioning_folder():
    assert RULES_DIR.relative_to(Path(__file__).resolve().parents[2]) == Path(
        "graphite/grafana/provisioning/alerting"
    )
