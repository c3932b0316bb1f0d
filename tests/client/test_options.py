"""A bad client option is named: in the log line, in `stats()`'s drop reason text, and in
`Client.config_error`, which the Flask extension turns into an error at `init_app`. The
client itself still never raises (docs/client.md)."""

from __future__ import annotations

import logging

import pytest

from statsd_metrics.client import ConfigError


@pytest.mark.parametrize(
    ("options", "option"),
    [
        ({"port": "abc"}, "port"),
        ({"port": 70_000}, "port"),
        ({"port": True}, "port"),
        ({"transport": "pigeon"}, "transport"),
        ({"transport": "unix"}, "socket_path"),
        ({"host": ""}, "host"),
        ({"prefix": 5}, "prefix"),
        ({"tags": 5}, "tags"),
        ({"buffered": "maybe"}, "buffered"),
        ({"max_packet_size": "big"}, "max_packet_size"),
        ({"max_packet_size": -1}, "max_packet_size"),
        ({"flush_interval": "soon"}, "flush_interval"),
        ({"flush_interval": 0}, "flush_interval"),
        ({"max_queue": 1.5}, "max_queue"),
        ({"timeout": "soon"}, "timeout"),
        ({"timeout": 0}, "timeout"),
        ({"resolve_interval": "hourly"}, "resolve_interval"),
    ],
)
def test_a_bad_option_is_named(make_client, options, option, caplog):
    with caplog.at_level(logging.ERROR, logger="statsd_metrics"):
        client = make_client(**options)
    error = client.config_error
    assert isinstance(error, ConfigError)
    assert error.option == option
    assert f"dropped: {option}: " in caplog.text
    client.incr("x")
    assert client.stats()["dropped"] == {"bad_config": 1}


@pytest.mark.parametrize(
    "options",
    [{}, {"port": "8126"}, {"port": 8126.0}, {"max_packet_size": "512"}, {"buffered": "off"}],
)
def test_good_options_leave_no_error(make_client, options):
    assert make_client(**options).config_error is None
