"""Every panel of every dashboard, asked of the live pipeline the way Grafana asks: variables
resolved through /metrics/find and /metrics/expand, then one POST per panel with each target
wrapped in aliasSub and the panel's width as maxDataPoints; for the example app without
constant tags and for its twin with two (one more path segment after every name); and every
alert rule's query, which returns a series for each of the two."""

from __future__ import annotations

import math
import time

import pytest

from statsd_metrics.grafana.alerts.evaluate import HttpRenderAPI
from statsd_metrics.grafana.alerts.rules import RULES_DIR, Query, load
from statsd_metrics.grafana.dashboards import load_all
from statsd_metrics.grafana.dashboards.panels import WIDTH
from statsd_metrics.grafana.dashboards.templating import panels, resolve
from support.pipeline import Grafana
from tests.grafana.conftest import PREFIX, TAGGED_PREFIX

pytestmark = pytest.mark.slow
PANEL_PIXELS = 1200 * WIDTH // 24  # a half-width panel on a 1200 px wide screen


def grafana_view(live):
    """Grafana's datasource pointed at the live render API, and the range it would ask for."""
    grafana = Grafana(live.render_url)
    start, end = int(live.started) - 60, int(time.time()) + 1

    def find(query: str) -> list[str]:
        status, body = grafana.find_post(query, start, end)
        assert status == 200, body
        return [item["text"] for item in body]

    def expand(query: str) -> list[str]:
        status, body = grafana.expand(query)
        assert status == 200, body
        return body["results"]

    return grafana, start, end, find, expand


def test_template_variables_resolve_to_the_example_app(live):
    _, _, _, find, expand = grafana_view(live)
    models = load_all()
    service = resolve(models["statsd-metrics-service"], find, expand)
    assert {"tagapp", "teamapp"} <= set(service["prefix"].options)
    assert {"squad", "sync", "login", "training"} <= set(service["endpoint"].options)
    assert service["endpoint"].glob == "*"  # "All", allValue
    infrastructure = resolve(models["statsd-metrics-infrastructure"], find, expand)
    assert len(infrastructure["host"].options) == 1
    assert infrastructure["db"].options == ["teamapp"]  # the example app's database name
    picked = resolve(
        models["statsd-metrics-service"], find, expand, {"endpoint": ["sync", "squad"]}
    )
    assert picked["endpoint"].glob == "{sync,squad}"


@pytest.mark.parametrize("prefix", [PREFIX, TAGGED_PREFIX])
@pytest.mark.parametrize("uid", sorted(load_all()))
def test_every_panel_returns_a_series_with_real_values(live, uid, prefix):
    grafana, start, end, find, expand = grafana_view(live)
    model = load_all()[uid]
    queried = panels(model, resolve(model, find, expand, {"prefix": [prefix]}))
    assert queried
    empty = []
    for panel in queried:
        status, body = grafana.dashboard_render(panel.targets, start, end, PANEL_PIXELS)
        assert status == 200, f"{panel.title}: {body}"
        # Grafana splits each name on its last space to find the query it belongs to.
        assert {s["target"].rsplit(" ", 1)[1] for s in body} <= set(panel.targets), panel.title
        values = [v for s in body for v, _ in s["datapoints"] if v is not None]
        if not any(math.isfinite(v) for v in values):
            empty.append(panel.title)
    assert not empty, f"panels without data in {uid}: {empty}"


def test_every_rule_query_returns_a_series_for_each_application(live):
    """The shipped rules, unscaled (their windows hold the simulated day): each application
    query names both apps, tags or none; the pipeline queries return their one series."""
    for rule in load(RULES_DIR, {}):
        query = rule.nodes["A"]
        assert isinstance(query, Query)
        now = int(time.time())
        series = HttpRenderAPI(live.render_url).render(
            query.target, now - int(query.start), now, query.max_data_points
        )
        names = {s["target"] for s in series if any(v is not None for v, _ in s["datapoints"])}
        if rule.group == "application":
            assert names == {PREFIX, TAGGED_PREFIX}, (rule.title, names)
        else:
            assert len(names) == 1, (rule.title, names)


def _series(grafana, target, start, end, points):
    status, body = grafana.dashboard_render({"A": target}, start, end, points)
    assert status == 200, body
    return [v for s in body for v, _ in s["datapoints"] if v is not None]


def test_zoomed_out_counts_keep_their_sum_and_maxima_their_peak(live):
    """What `consolidateBy` in the dashboards buys: asked for an eighth of the points the range
    holds, the render API merges eight 1 s points into each; counts must still add up to the
    same total and a timer's upper must keep its maximum (averaging would divide both)."""
    grafana, start, end, find, expand = grafana_view(live)
    model = load_all()["statsd-metrics-service"]
    chosen = {"prefix": [live.prefix]}
    by_title = {p.title: p for p in panels(model, resolve(model, find, expand, chosen))}
    coarse_points = (end - start) // 8
    counts = by_title["Responses by status class"].targets["A"]
    fine, coarse = (_series(grafana, counts, start, end, n) for n in (100_000, coarse_points))
    assert len(coarse) <= len(fine) / 4
    assert sum(coarse) == pytest.approx(sum(fine), rel=0.1)
    upper = by_title["Slowest request (upper) by endpoint"].targets["A"]
    fine, coarse = (_series(grafana, upper, start, end, n) for n in (100_000, coarse_points))
    assert max(coarse) == pytest.approx(max(fine))
    # the raw series, consolidated by the render API's default (the average), lose the peak
    averaged = f"stats.timers.{live.prefix}.http.*.latency.upper"
    assert max(_series(grafana, averaged, start, end, coarse_points)) < max(fine)
