"""Grafana dashboards as code: one module per concern, built with grafana-foundation-sdk.

`python -m statsd_metrics.grafana.dashboards` writes them to graphite/grafana/dashboards/,
where Grafana's dashboard provider and the preview (`/dashboards/` on the render API) read
them; the committed files must equal what this package builds (tests/grafana/test_dashboards.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from ...graphite import CONF_DIR
from . import business, infrastructure, pipeline_health, quality, service

DASHBOARD_DIR = CONF_DIR / "grafana" / "dashboards"
BUILDERS: dict[str, Callable[[], dict]] = {
    "service": service.build,
    "infrastructure": infrastructure.build,
    "business": business.build,
    "quality-security": quality.build,
    "pipeline": pipeline_health.build,
}


def render(model: dict) -> str:
    """The committed form of a dashboard: stable key order, two-space indent."""
    return json.dumps(model, indent=2, sort_keys=True) + "\n"


def build_all() -> dict[str, str]:
    """File name -> JSON text for every dashboard."""
    return {f"{name}.json": render(build()) for name, build in BUILDERS.items()}


def write_all(directory: Path = DASHBOARD_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in build_all().items():
        path = directory / name
        path.write_text(text)
        written.append(path)
    return written


def load_all(directory: Path = DASHBOARD_DIR) -> dict[str, dict]:
    """The committed dashboards by uid."""
    models = (json.loads(path.read_text()) for path in sorted(directory.glob("*.json")))
    return {model["uid"]: model for model in models}
