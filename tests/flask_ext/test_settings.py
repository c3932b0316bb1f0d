"""A bad setting stops `init_app` with the setting's name (docs/application.md), whether it is
one of the client's STATSD_* settings, in app.config or the environment, or the extension's
own STATSD_METRICS_*."""

from __future__ import annotations

import re

import pytest
from flask import Flask

from statsd_metrics import Client
from statsd_metrics.flask import StatsdMetrics


def app_with(**config: object) -> Flask:
    app = Flask("settings")
    app.config.update(config)
    return app


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"STATSD_PORT": "abc"}, "STATSD_PORT (in app.config): 'abc' is not an integer"),
        ({"STATSD_PORT": 0}, "STATSD_PORT (in app.config): must be > 0, not 0"),
        ({"STATSD_HOST": ""}, "STATSD_HOST (in app.config): must be a non-empty str"),
        ({"STATSD_PREFIX": 5}, "STATSD_PREFIX (in app.config): names are str"),
        ({"STATSD_TAGS": 5}, "STATSD_TAGS (in app.config): "),
        ({"STATSD_TRANSPORT": "pigeon"}, "STATSD_TRANSPORT (in app.config): must be udp, tcp"),
        ({"STATSD_TRANSPORT": "unix"}, "STATSD_SOCKET_PATH (not set): the unix transport"),
        ({"STATSD_BUFFERED": "maybe"}, "STATSD_BUFFERED (in app.config): 'maybe' is not a bool"),
        ({"STATSD_MAX_PACKET_SIZE": "x"}, "STATSD_MAX_PACKET_SIZE (in app.config): 'x' is not"),
        ({"STATSD_FLUSH_INTERVAL": -1}, "STATSD_FLUSH_INTERVAL (in app.config): must be > 0"),
        ({"STATSD_METRICS_ENABLED": "no"}, "STATSD_METRICS_ENABLED must be True or False"),
        ({"STATSD_METRICS_KEY": "url"}, "STATSD_METRICS_KEY must be 'endpoint' or 'rule'"),
        ({"STATSD_METRICS_UNMATCHED": 5}, "STATSD_METRICS_UNMATCHED must be a string"),
        ({"STATSD_METRICS_EXCLUDE_RULES": 5}, "STATSD_METRICS_EXCLUDE_RULES must be a string"),
        ({"STATSD_METRICS_EXCLUDE_ENDPOINTS": ["static", 5]}, "STATSD_METRICS_EXCLUDE_ENDPOINTS"),
    ],
)
def test_init_app_names_the_bad_setting(config, message):
    app = app_with(**config)
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        StatsdMetrics().init_app(app)
    assert "statsd_metrics" not in app.extensions


def test_a_bad_setting_from_the_environment_says_so(monkeypatch):
    monkeypatch.setenv("STATSD_PORT", "eighty")
    app = app_with(STATSD_PREFIX="shop")  # a client setting in app.config: the app's own client
    with pytest.raises(ValueError, match=r"^STATSD_PORT \(in the environment\): 'eighty' is not"):
        StatsdMetrics(app)


def test_good_settings_give_the_app_its_own_working_client():
    app = app_with(STATSD_PORT="8126", STATSD_PREFIX="shop", STATSD_METRICS_ENABLED=False)
    metrics = StatsdMetrics(app)
    assert isinstance(metrics.client, Client)
    assert metrics.client.config_error is None
    metrics.client.close()
