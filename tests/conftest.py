"""Fixtures for every test directory."""

import pytest

from statsd_metrics import default


@pytest.fixture(autouse=True)
def _no_configure_leaks(monkeypatch):
    """What a test gives `statsd_metrics.configure()` stays in that test: the Flask extension
    builds its clients from those options, so a later test's app would otherwise inherit them
    (an unbuffered client, say, that sends one datagram per metric)."""
    monkeypatch.setattr(default, "_configured", dict(default._configured))
