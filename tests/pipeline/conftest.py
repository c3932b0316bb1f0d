"""Fixtures: real `statsd-metrics up` processes, and a client that sends what Grafana sends."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support.pipeline import Grafana, RunningUp


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


@pytest.fixture
def grafana(up: RunningUp) -> Grafana:
    """Grafana's datasource pointed at the test module's running pipeline (its `up` fixture)."""
    return Grafana(up.render_url)
