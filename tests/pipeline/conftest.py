"""Fixtures: real `statsd-metrics up` processes, and a client that sends what Grafana sends."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pipeline.testing import RunningUp


@pytest.fixture
def start_up(tmp_path: Path) -> Iterator[Callable[..., RunningUp]]:
    """Start `up` on free ports; every one started here is stopped by PID at teardown."""
    started: list[RunningUp] = []

    def start(*args: str, data_dir: Path | None = None, **options) -> RunningUp:
        up = RunningUp(data_dir or tmp_path / f"var{len(started)}", *args, **options)
        started.append(up)
        return up

    yield start
    for up in started:
        up.stop()


def encode_uri_component(value: str) -> str:
    """JavaScript's encodeURIComponent, which Grafana's frontend uses."""
    return urllib.parse.quote(value, safe="-_.!~*'()")


class Grafana:
    """The HTTP requests of Grafana's Graphite datasource, byte for byte as the shared
    reference (grafana-graphite-requests.md) describes them. Returns (status, JSON or text)."""

    def __init__(self, url: str):
        self.url = url

    def dashboard_render(
        self, targets: dict[str, str], start: int | str, end: int | str, max_data_points: int
    ) -> tuple[int, object]:
        """Frontend (dashboards, Explore): each target wrapped in aliasSub with its refId."""
        wrapped = (f'aliasSub({target}, "(^.*$)", "\\1 {ref}")' for ref, target in targets.items())
        body = "&".join(f"target={encode_uri_component(t)}" for t in wrapped)
        body += f"&from={start}&until={end}&format=json&maxDataPoints={max_data_points}"
        return self._post("/render", body)

    def backend_render(
        self, target: str, start: int, end: int, max_data_points: int = 43200
    ) -> tuple[int, object]:
        """Alerting and "Save & test" (Go backend): sorted keys, `+` for spaces, no aliasSub."""
        fields = {
            "format": "json",
            "from": start,
            "maxDataPoints": max_data_points,
            "target": target,
            "until": end,
        }
        return self._post("/render", urllib.parse.urlencode(sorted(fields.items())))

    def find_post(self, query: str, start: int, end: int) -> tuple[int, object]:
        # The frontend writes the glob into the body unencoded.
        return self._post(f"/metrics/find?from={start}&until={end}", f"query={query}")

    def find_get(self, query: str) -> tuple[int, object]:
        return self._send(f"/metrics/find?query={encode_uri_component(query)}")

    def expand(self, query: str) -> tuple[int, object]:
        return self._send(f"/metrics/expand?query={encode_uri_component(query)}")

    def _post(self, path: str, body: str) -> tuple[int, object]:
        return self._send(path, body.encode())

    def _send(self, path: str, body: bytes | None = None) -> tuple[int, object]:
        headers = {"User-Agent": "Grafana/12.0.0"}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        request = urllib.request.Request(self.url + path, data=body, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(errors="replace")


@pytest.fixture
def grafana(up: RunningUp) -> Grafana:
    """Grafana's datasource pointed at the test module's running pipeline (its `up` fixture)."""
    return Grafana(up.render_url)
