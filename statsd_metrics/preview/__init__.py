"""The render API with a dashboard preview at /dashboards/, for people without Grafana at hand.

`statsd-metrics up` serves this app (gunicorn `statsd_metrics.preview:app`): graphite-render's
own app, unchanged, plus a blueprint that shows the dashboards of graphite/grafana/dashboards/
with every panel drawn by the render API itself (`/render?format=png`), template variables
resolved the way Grafana resolves them, and the pictures reloaded on the dashboard's refresh
interval.
"""

from __future__ import annotations

import html
import json
import os
import re
import time
import urllib.parse
from pathlib import Path

from flask import Blueprint, abort, request
from graphite_render.app import app

from ..grafana.alerts.rules import seconds
from ..grafana.dashboards import DASHBOARD_DIR, load_all
from ..grafana.dashboards.templating import ALL, PanelQuery, Variable, panels, resolve

PAGE = (Path(__file__).parent / "page.html").read_text()
RANGES = ("-5min", "-15min", "-1h", "-6h", "-24h", "-7d")
# Grafana's default; a new application's few minutes get the smallest range that holds them
# instead, or they would be a sliver at the right edge of an hour.
DEFAULT_RANGE = "-1h"
SHORT_RANGES = ((240, "-5min"), (840, "-15min"))  # data younger than this many seconds
# Grafana's unit ids as the axis says them (graphite-render draws no unit of its own).
UNIT_LABELS = {
    "ms": "ms", "s": "seconds", "percent": "%", "reqps": "requests/s", "cps": "per second",
    "ops": "queries/s", "bytes": "bytes", "short": "count",
}  # fmt: skip
ALIAS = re.compile(r"^alias\(.*, '([^']*)'\)$")
EMPTY = (
    "<div class=empty><strong>No application has sent metrics here yet.</strong> Send some "
    'with the client (<code>statsd_metrics.configure(prefix="myapp")</code> and the Flask '
    "extension; README, <em>Client</em>) to the aggregator that <code>statsd-metrics up</code> "
    "printed, or run <code>statsd-metrics up --demo</code> for the example application with "
    "simulated users. This page refreshes on its own.</div>"
)
PAGE_WIDTH = 1200  # px for Grafana's 24 grid columns
ROW_HEIGHT = 30  # px per grid row, as in Grafana
DEFAULT_REFRESH = 30

blueprint = Blueprint("dashboards", __name__, url_prefix="/dashboards")


def dashboards() -> dict[str, dict]:
    """The dashboards by uid: `up` names their directory in STATSD_METRICS_DASHBOARDS (an
    `init` copy's when it runs from one, so an edited dashboard shows as edited)."""
    return load_all(Path(os.environ.get("STATSD_METRICS_DASHBOARDS") or DASHBOARD_DIR))


def _find(query: str) -> list[str]:
    return sorted({node.name for node in app.store.find(query)})


def _expand(query: str) -> list[str]:
    return sorted({node.path for node in app.store.find(query)})


def _refresh(text: str) -> float:
    try:
        return seconds(text)
    except ValueError:
        return DEFAULT_REFRESH


def _size(panel: PanelQuery) -> tuple[int, int]:
    """Pixels for the panel's grid size (24 columns across the page, 30 px rows)."""
    return PAGE_WIDTH * panel.width // 24 - 12, panel.height * ROW_HEIGHT


def unit_label(unit: str) -> str:
    return UNIT_LABELS.get(unit, unit)


def _colored(target: str, colors: dict[str, str]) -> str:
    """The target drawn in the colour the dashboard fixes for its series name, if any."""
    match = ALIAS.match(target)
    if match and match[1] in colors:
        return f"color({target}, '{colors[match[1]]}')"
    return target


def _image_url(panel: PanelQuery, start: str) -> str:
    width, height = _size(panel)
    params = [("target", _colored(target, panel.colors)) for target in panel.targets.values()]
    params += [
        ("vtitle", unit_label(panel.unit)),
        ("from", start),
        ("until", "now"),
        ("format", "png"),
        ("width", str(width)),
        ("height", str(height)),
        ("title", panel.title),
        ("bgcolor", "FFFFFF"),
        ("fgcolor", "333333"),
        ("majorGridLineColor", "CCCCCC"),
        ("minorGridLineColor", "EEEEEE"),
        ("hideLegend", "false"),
    ]
    if panel.stacked:
        params.append(("areaMode", "stacked"))
    if panel.unit == "bytes":
        params.append(("yUnitSystem", "binary"))
    return "/render?" + urllib.parse.urlencode(params)


def _select(variable: Variable) -> str:
    choices = ([ALL] if variable.include_all else []) + variable.options
    options = "".join(
        f'<option value="{html.escape(v)}"{" selected" if v in variable.selected else ""}>'
        f"{'All' if v == ALL else html.escape(v)}</option>"
        for v in choices
    )
    return (
        f'<label>{html.escape(variable.label)} <select name="var-{html.escape(variable.name)}" '
        f'onchange="this.form.submit()">{options}</select></label>'
    )


# graphite-render strips a trailing slash before routing (its TrailingSlash middleware), so
# /dashboards/ arrives as /dashboards: match it as is rather than redirect in a loop.
@blueprint.get("/", strict_slashes=False)
def index() -> str:
    models = sorted(dashboards().items(), key=lambda item: item[1]["title"])
    items = "".join(
        f'<li><a href="/dashboards/{uid}">{html.escape(model["title"])}</a>: '
        f"{html.escape(model.get('description', ''))}</li>"
        for uid, model in models
    )
    body = f"<h1>Dashboards</h1><ul class=list>{items}</ul>"
    return _page("Dashboards", body, refresh=0)


@blueprint.get("/<uid>")
def dashboard(uid: str) -> str:
    model = dashboards().get(uid)
    if model is None:
        abort(404)
    chosen = {key[4:]: request.args.getlist(key) for key in request.args if key.startswith("var-")}
    start = request.args.get("from", "")
    variables = resolve(model, _find, _expand, chosen)
    prefix = variables.get("prefix")
    if prefix is not None and "prefix" not in chosen:
        with_data = [p for p in prefix.options if _first_request(p, DEFAULT_RANGE) is not None]
        if with_data and prefix.selected != with_data[:1]:
            variables = resolve(model, _find, _expand, {**chosen, "prefix": with_data[:1]})
    if start not in RANGES:
        start = DEFAULT_RANGE
        first = _first_request(variables["prefix"].glob, DEFAULT_RANGE) if prefix else None
        if first is not None:
            age = time.time() - first
            start = next((r for limit, r in SHORT_RANGES if age < limit), DEFAULT_RANGE)
    queries = {p.id: p for p in panels(model, variables)}
    controls = "".join(_select(v) for v in variables.values())
    ranges = "".join(
        f'<option value="{r}"{" selected" if r == start else ""}>last {r[1:]}</option>'
        for r in RANGES
    )
    controls += (
        f'<label>Range <select name="from" onchange="this.form.submit()">{ranges}</select></label>'
    )
    parts = [
        f"<h1>{html.escape(model['title'])}</h1>",
        f"<p>{html.escape(model.get('description', ''))}</p>",
        f'<form class="controls">{controls}</form>',
    ]
    if any(not v.options for v in variables.values()):
        parts.append(EMPTY)
    for panel in model["panels"]:
        if panel["type"] == "row":
            parts.append(f"<h2>{html.escape(panel['title'])}</h2>")
            continue
        query = queries[panel["id"]]
        width, height = _size(query)
        source = html.escape(_image_url(query, start))
        unit = html.escape(unit_label(query.unit))
        parts.append(
            f'<figure class="panel" style="width:{width}px" data-unit="{unit}">'
            f'<img alt="{html.escape(query.title)}" data-src="{source}" data-state="loading"'
            f' width="{width}" height="{height}">'
            f"<figcaption><span class=unit>{unit}</span> "
            f"{html.escape(panel.get('description', ''))}</figcaption></figure>"
        )
    refresh = _refresh(request.args.get("refresh") or model.get("refresh", ""))
    return _page(model["title"], "".join(parts), refresh)


def _first_request(prefix: str, start: str) -> int | None:
    """When the application's first request in the range was counted, if it had any: the
    selector's default is the first application with requests, not the first name in the
    alphabet (which may be long gone), and the range fits a new application's minutes."""
    path = f"stats.timers.{prefix}.http.*.latency"
    target = f"sumSeries(group({path}.count, {path}.*.count))"
    query = urllib.parse.urlencode({"target": target, "from": start, "format": "json"})
    answer = app.test_client().get(f"/render?{query}")
    if answer.status_code != 200:
        return None
    series = answer.get_json() or []
    times = [ts for s in series for v, ts in s.get("datapoints", []) if v]
    return min(times) if times else None


def _page(title: str, body: str, refresh: float) -> str:
    return (
        PAGE.replace("{{title}}", html.escape(title))
        .replace("{{body}}", body)
        .replace("{{refresh}}", json.dumps(refresh))
        .replace("{{width}}", str(PAGE_WIDTH))
    )


app.register_blueprint(blueprint)
