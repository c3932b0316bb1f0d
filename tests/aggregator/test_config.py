"""Configuration: defaults, files, flags, and errors that name the key."""

from __future__ import annotations

import pytest

from aggregator.config import Config, ConfigError, HistogramRule, from_mapping, load


def test_defaults_are_the_references():
    c = Config()
    assert (c.bind, c.port, c.mgmt_port) == ("127.0.0.1", 8125, 8126)
    assert (c.graphite_host, c.graphite_port, c.flush_interval) == ("127.0.0.1", 2003, 10.0)
    assert c.legacy_namespace
    assert c.flush_counts
    assert c.key_name_sanitize
    assert c.percent_thresholds == (90,)
    assert (c.global_prefix, c.prefix_counter, c.prefix_stats) == ("stats", "counters", "statsd")
    assert c.tag_mode == "graphite"
    assert not any(c.deletes(kind) for kind in ("counters", "timers", "gauges", "sets"))


def test_toml_file_with_histograms_and_flags_winning(tmp_path):
    path = tmp_path / "agg.toml"
    path.write_text(
        "port = 9000\nflush_interval = 0.5\npercent_thresholds = [90, -10, 99.9]\n"
        'tag_mode = "path"\ndelete_idle_stats = true\ndelete_gauges = false\n'
        '[[histogram]]\nmetric = "api"\nbins = [10, 100, "inf"]\n'
    )
    c = load(path, {"port": 9001})
    assert c.port == 9001
    assert c.flush_interval == 0.5
    assert c.percent_thresholds == (90, -10, 99.9)
    assert c.histogram == (HistogramRule("api", (10, 100, "inf")),)
    assert c.deletes("counters")
    assert not c.deletes("gauges")
    assert c.source == str(path.resolve())


def test_json_file(tmp_path):
    path = tmp_path / "agg.json"
    path.write_text('{"legacy_namespace": false, "percent_thresholds": 95}')
    c = load(path)
    assert not c.legacy_namespace
    assert c.percent_thresholds == (95,)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"flushInterval": 1}, "'flushInterval': unknown key"),
        ({"port": 0}, "'port': port 0 must be between 1 and 65535"),
        ({"mgmt_port": 70000}, "'mgmt_port': port 70000"),
        ({"port": "8125"}, "'port': expected an integer"),
        ({"legacy_namespace": "yes"}, "'legacy_namespace': expected true or false"),
        ({"flush_interval": 0}, "'flush_interval': must be greater than 0"),
        ({"tag_mode": "tags"}, '\'tag_mode\': must be "graphite" or "path"'),
        ({"percent_thresholds": [90, "x"]}, "'percent_thresholds'"),
        ({"percent_thresholds": [0]}, "'percent_thresholds'"),
        ({"histogram": [{"metric": "a", "bins": [10, 5]}]}, "'histogram': entry 0"),
        ({"histogram": [{"metric": "a"}]}, "'histogram': entry 0 must have"),
        ({"gauges_max_ttl": 0}, "'gauges_max_ttl'"),
        ({"health_status": "sideways"}, "'health_status'"),
        ({"calculated_timer_metrics": "mean"}, "'calculated_timer_metrics'"),
    ],
)
def test_bad_values_name_the_key(values, message):
    with pytest.raises(ConfigError) as info:
        from_mapping(values)
    assert message in str(info.value)


def test_unreadable_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("port = ")
    with pytest.raises(ConfigError, match="is not valid"):
        load(bad)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.3", "::1", "localhost", "LOCALHOST"])
def test_a_loopback_management_port_needs_no_token(host):
    assert from_mapping({"mgmt_bind": host}).mgmt_token == ""


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.5", "fe80::1", "metrics-host"])
def test_a_management_port_reachable_from_elsewhere_needs_a_token(host):
    with pytest.raises(ConfigError, match="'mgmt_token': required when mgmt_bind"):
        from_mapping({"mgmt_bind": host})
    assert from_mapping({"mgmt_bind": host, "mgmt_token": "x" * 16}).mgmt_bind == host


@pytest.mark.parametrize("token", ["short", "has a space in it!", "tab\tinside-the-token"])
def test_a_weak_or_unusable_management_token_is_refused(token):
    with pytest.raises(ConfigError, match="'mgmt_token': must be at least 16 printable"):
        from_mapping({"mgmt_token": token})
