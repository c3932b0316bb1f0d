"""Fixtures: real `statsd-metrics up` processes, and a client that sends what Grafana sends."""

from __future__ import annotations

import pytest

from support.pipeline import Grafana, RunningUp, start_up

__all__ = ["start_up"]  # the fixture, shared with tests/reliability


@pytest.fixture
def grafana(up: RunningUp) -> Grafana:
    """Grafana's datasource pointed at the test module's running pipeline (its `up` fixture)."""
    return Grafana(up.render_url)
