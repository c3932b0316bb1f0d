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
import urllib.parse
from pathlib import Path

from flask import Blueprint, abort, request
from graphite_render.app import app

from ..grafana.alerts.rules import seconds
from ..grafana.dashboards import load_all
from ..grafana.dashboards.templating import ALL, PanelQuery, Variable, panels, resolve

PAGE = (Path(__file__).parent / "page.html").read_text()
RANGES = ("-15min", "-1h", "-6h", "-24h", "-7d")
PAGE_WIDTH = 1200  # px for Grafana's 24 grid columns
ROW_HEIGHT = 30  # px per grid row, as in Grafana
DEFAULT_REFRESH = 30

blueprint = Blueprint("dashboards", __name__, url_prefix="/dashboards")


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


def _image_url(panel: PanelQuery, start: str) -> str:
    width, height = _size(panel)
    params = [("target", target) for target in panel.targets.values()]
    params += [
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
    models = sorted(load_all().items(), key=lambda item: item[1]["title"])
    items = "".join(
        f'<li><a href="/dashboards/{uid}">{html.escape(model["title"])}</a>: '
        f"{html.escape(model.get('description', ''))}</li>"
        for uid, model in models
    )
    body = f"<h1>Dashboards</h1><ul class=list>{items}</ul>"
    return _page("Dashboards", body, refresh=0)


@blueprint.get("/<uid>")
def dashboard(uid: str) -> str:
    model = load_all().get(uid)
    if model is None:
        abort(404)
    chosen = {key[4:]: request.args.getlist(key) for key in request.args if key.startswith("var-")}
    start = request.args.get("from", "-1h")
    if start not in RANGES:
        start = "-1h"
    variables = resolve(model, _find, _expand, chosen)
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
    for panel in model["panels"]:
        if panel["type"] == "row":
            parts.append(f"<h2>{html.escape(panel['title'])}</h2>")
            continue
        query = queries[panel["id"]]
        width, height = _size(query)
        source = html.escape(_image_url(query, start))
        parts.append(
            f'<figure class="panel" style="width:{width}px">'
            f'<img alt="{html.escape(query.title)}" data-src="{source}" data-state="loading"'
            f' width="{width}" height="{height}">'
            f"<figcaption>{html.escape(panel.get('description', ''))}</figcaption></figure>"
        )
    refresh = _refresh(request.args.get("refresh") or model.get("refresh", ""))
    return _page(model["title"], "".join(parts), refresh)


def _page(title: str, body: str, refresh: int) -> str:
    return (
        PAGE.replace("{{title}}", html.escape(title))
        .replace("{{body}}", body)
        .replace("{{refresh}}", json.dumps(refresh))
        .replace("{{width}}", str(PAGE_WIDTH))
    )


app.register_blueprint(blueprint)
