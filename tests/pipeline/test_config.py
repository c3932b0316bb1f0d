"""The rendered configuration, read by the programs' own parsers (carbon's, whisper's, YAML,
carbon-c-relay's test mode), not by re-implementing them."""

import configparser
import importlib
import json
import subprocess
from pathlib import Path

import pytest
import whisper
import yaml
from graphite_render.carbonlink import CarbonLinkPool

from statsd_metrics.graphite import config
from statsd_metrics.graphite.config import ConfigError
from statsd_metrics.graphite.whisper_finder import WhisperFinder
from statsd_metrics.supervisor.layout import FLUSH_INTERVALS, Layout
from support.pipeline import graphite_config


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory):
    """carbon.storage, which needs carbon's CONF_DIR set before it is imported."""
    from carbon.conf import settings

    settings.setdefault("CONF_DIR", str(tmp_path_factory.mktemp("carbon-conf")))
    return importlib.import_module("carbon.storage")


def rendered(tmp_path: Path, **build) -> Layout:
    layout = Layout.build(tmp_path / "var", **build)
    config.render(layout)
    return layout


def carbon_section(layout: Layout, instance: int = 0) -> configparser.SectionProxy:
    parser = configparser.ConfigParser()
    parser.optionxform = str
    parser.read(layout.carbon_conf(layout.caches[instance]))
    return parser["cache"]


def test_every_carbon_listener_is_on_loopback_on_its_port(tmp_path: Path):
    layout = rendered(tmp_path, caches=2)
    for n, cache in enumerate(layout.caches):
        section = carbon_section(layout, n)
        interfaces = {k: v for k, v in section.items() if k.endswith("_INTERFACE")}
        assert len(interfaces) >= 5
        assert set(interfaces.values()) == {"127.0.0.1"}, interfaces
        assert section["LINE_RECEIVER_PORT"] == str(cache.line_port)
        assert section["PICKLE_RECEIVER_PORT"] == str(cache.pickle_port)
        assert section["CACHE_QUERY_PORT"] == str(cache.carbonlink_port)
        assert section["LOCAL_DATA_DIR"] == str(layout.whisper_dir(cache))
        assert section.getboolean("ENABLE_UDP_LISTENER") is False


def test_write_limits_never_drop_a_create_and_are_far_above_carbons_sample(tmp_path: Path):
    section = carbon_section(rendered(tmp_path))
    assert float(section["MAX_CREATES_PER_MINUTE"]) == float("inf")
    assert float(section["MAX_UPDATES_PER_SECOND"]) >= 10 * 500


@pytest.mark.parametrize("interval", FLUSH_INTERVALS)
def test_statsd_retentions_start_at_the_flush_interval(
    storage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, interval: int
):
    layout = rendered(tmp_path, flush_interval=interval)
    conf_dir = layout.carbon_conf(layout.caches[0]).parent
    monkeypatch.setattr(storage, "STORAGE_SCHEMAS_CONFIG", str(conf_dir / "storage-schemas.conf"))
    schemas = storage.loadStorageSchemas()
    statsd = next(s for s in schemas if s.matches("stats.gauges.app.users"))
    archives = [a.getTuple() for a in statsd.archives]
    assert archives[0] == (interval, 6 * 3600 // interval)
    whisper.validateArchiveList(archives)
    # And the documented cost for the default interval is what whisper allocates.
    if interval == 10:
        path = tmp_path / "probe.wsp"
        whisper.create(str(path), archives)
        assert path.stat().st_size == 777_652
        assert "777,652 B" in (config.GRAPHITE_DIR / "storage-schemas.conf").read_text()


def test_carbons_own_series_keep_their_minute_resolution(
    storage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    layout = rendered(tmp_path, flush_interval=1)
    conf_dir = layout.carbon_conf(layout.caches[0]).parent
    monkeypatch.setattr(storage, "STORAGE_SCHEMAS_CONFIG", str(conf_dir / "storage-schemas.conf"))
    schemas = storage.loadStorageSchemas()
    carbon_schema = next(s for s in schemas if s.matches("carbon.agents.host-a.cache.size"))
    assert carbon_schema.archives[0].getTuple() == (60, 90 * 1440)


# Every kind of series the aggregator writes, in both namespaces, and the roll-up it needs.
ROLLUPS = {
    # legacy namespace (the default)
    "stats.api.requests": "average",
    "stats_counts.api.requests": "sum",
    "stats.x.count": "average",  # the rate of a counter called "x.count"
    "stats_counts.x.count": "sum",
    "stats.timers.api.latency.count": "sum",
    "stats.timers.api.latency.count_ps": "average",
    "stats.timers.api.latency.lower": "min",
    "stats.timers.api.latency.upper": "max",
    "stats.timers.api.latency.sum": "sum",
    "stats.timers.api.latency.sum_squares": "sum",
    "stats.timers.api.latency.mean": "average",
    "stats.timers.api.latency.median": "average",
    "stats.timers.api.latency.std": "average",
    "stats.timers.api.latency.count_90": "sum",
    "stats.timers.api.latency.mean_90": "average",
    "stats.timers.api.latency.upper_90": "max",
    "stats.timers.api.latency.sum_90": "sum",
    "stats.timers.api.latency.sum_squares_90": "sum",
    "stats.timers.api.latency.upper_99_9": "max",
    "stats.timers.api.latency.lower_top10": "min",
    "stats.timers.api.latency.count_top10": "sum",
    "stats.timers.api.latency.histogram.bin_50": "sum",
    "stats.timers.api.latency.histogram.bin_0_5": "sum",
    "stats.timers.api.latency.histogram.bin_inf": "sum",
    "stats.timers.upper.latency.mean": "average",  # a timer called "upper.latency"
    "stats.gauges.db.pool.active": "last",
    "stats.gauges.disk.upper": "last",  # a gauge whose name ends like a timer field
    "stats.gauges.queue.count": "last",
    "stats.sets.users.count": "sum",
    "stats.sets.users.daily_count": "max",  # the running count of the UTC day
    "stats.sets.users.daily_count;env=prod": "max",
    "stats.sets.users.env.prod.daily_count": "max",
    "stats.sets.daily_count.count": "sum",  # a set called "daily_count"
    "statsd.numStats": "average",
    "stats.statsd.bad_lines_seen": "average",
    "stats_counts.statsd.bad_lines_seen": "sum",
    "stats.statsd.graphiteStats.last_flush": "average",
    "stats.statsd.processing_time": "average",
    "stats.gauges.statsd.timestamp_lag": "last",
    # tags folded into the path (what `up` runs): the field stays last
    "stats_counts.api.requests.route.home": "sum",
    "stats.api.requests.route.home": "average",
    "stats.timers.api.latency.route.home.upper": "max",
    "stats.timers.api.latency.route.home.count_90": "sum",
    "stats.gauges.db.pool.host.web1": "last",
    # Graphite tags after the field
    "stats_counts.api.requests;route=home": "sum",
    "stats.timers.api.latency.upper;route=home": "max",
    "stats.timers.api.latency.sum;route=home": "sum",
    "stats.timers.api.latency.mean;route=home": "average",
    # new namespace
    "stats.counters.api.requests.rate": "average",
    "stats.counters.api.requests.count": "sum",
    "stats.counters.api.requests.count;route=home": "sum",
    "stats.statsd.numStats": "average",
    # carbon's own
    "carbon.agents.host-a.cache.size": "average",
}


@pytest.fixture(scope="module")
def aggregation_schemas(storage, tmp_path_factory: pytest.TempPathFactory):
    layout = Layout.build(tmp_path_factory.mktemp("agg"))
    config.render(layout)
    path = layout.carbon_conf(layout.caches[0]).parent / "storage-aggregation.conf"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(storage, "STORAGE_AGGREGATION_CONFIG", str(path))
        return storage.loadAggregationSchemas()


@pytest.mark.parametrize(("metric", "method"), ROLLUPS.items())
def test_rollup_matches_the_meaning_of_each_series(aggregation_schemas, metric, method):
    schema = next(s for s in aggregation_schemas if s.matches(metric))
    assert schema.archives == (0.0, method), schema.name


def test_render_api_reads_every_cache_and_asks_each_for_its_cache(tmp_path: Path):
    layout = rendered(tmp_path, caches=3)
    settings = yaml.safe_load(layout.render_conf.read_text())
    assert settings["whisper"]["directories"] == [str(layout.whisper_dir(c)) for c in layout.caches]
    assert settings["carbon"]["hosts"] == [
        f"127.0.0.1:{c.carbonlink_port}:{c.instance}" for c in layout.caches
    ]
    assert settings["carbon"]["hashing_type"] == "carbon_ch"


def ring_collisions(hosts: list[str], count: int) -> list[str]:
    """Series names whose hash is exactly a ring entry's position (graphite-render's bug)."""
    ring = CarbonLinkPool(hosts=hosts).hash_ring
    positions = {position for position, _ in ring.ring}
    names = (f"stats.timers.app.endpoint{n}.upper" for n in range(100_000))
    return [m for m in names if ring.compute_ring_position(m) in positions][:count]


@pytest.mark.parametrize("caches", [1, 2])
def test_render_api_finder_survives_a_series_on_a_ring_entry(tmp_path: Path, caches: int):
    layout = rendered(tmp_path, caches=caches)
    settings = yaml.safe_load(layout.render_conf.read_text())
    [finder_path] = settings["finders"]
    assert finder_path == "statsd_metrics.graphite.whisper_finder.WhisperFinder"
    finder = WhisperFinder(settings)
    stock = CarbonLinkPool(**settings["carbon"])
    for metric in ring_collisions(settings["carbon"]["hosts"], 3):
        with pytest.raises(TypeError):  # graphite-render's own ring: HTTP 500 for this series
            stock.select_host(metric)
        assert finder.carbonlink.select_host(metric)[1] in {c.instance for c in layout.caches}


def test_relay_config_is_valid_and_hashes_like_the_render_api(tmp_path: Path):
    layout = rendered(tmp_path, caches=2)
    check = subprocess.run(
        ["carbon-c-relay", "-f", str(layout.relay_conf), "-t", "-t"],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    hosts = yaml.safe_load(layout.render_conf.read_text())["carbon"]["hosts"]
    metrics = [f"stats.timers.app.endpoint{n}.upper" for n in range(60)]
    metrics += ring_collisions(hosts, 5)
    routed = subprocess.run(
        ["carbon-c-relay", "-f", str(layout.relay_conf), "-t"],
        input="".join(f"{m} 1 1\n" for m in metrics),
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    # Test mode prints, per metric: "* -> <metric>", the cluster, then the chosen member.
    lines = [line.strip() for line in routed.splitlines()]
    relay_choice = {}
    for n, line in enumerate(lines):
        if line.startswith("* -> "):
            relay_choice[line[5:]] = lines[n + 2]
    pool = WhisperFinder(yaml.safe_load(layout.render_conf.read_text())).carbonlink
    port_of = {c.instance: c.line_port for c in layout.caches}
    render_choice = {m: f"127.0.0.1:{port_of[pool.select_host(m)[1]]}" for m in metrics}
    assert relay_choice == render_choice
    assert len(set(render_choice.values())) == 2  # and both caches get series


def test_each_aggregator_folds_tags_into_paths_and_spools_under_the_data_dir(
    tmp_path: Path, monkeypatch
):
    monkeypatch.setattr("socket.gethostname", lambda: "web1")
    layout = rendered(tmp_path, aggregators=2)
    for agg in layout.aggregators:
        assert json.loads(layout.aggregator_conf(agg).read_text()) == {
            "tag_mode": "path",
            "spool_dir": str(tmp_path / "var" / f"aggregator-{agg.index}" / "spool"),
            "host_tag": f"web1-{agg.index}",  # two aggregators, two series of each name
        }


def test_one_aggregator_tags_its_series_with_the_host_name_unless_told():
    assert config.host_tag("auto", 0, 1) == "auto"  # the aggregator resolves it
    assert config.host_tag("", 0, 1) == ""  # turned off
    assert config.host_tag("db3", 1, 2) == "db3-1"


def test_user_aggregator_settings_are_kept_and_tags_still_folded(tmp_path: Path):
    user = tmp_path / "agg.toml"
    user.write_text('percent_thresholds = [90, 99]\ntag_mode = "path"\n')
    assert config.aggregator_settings(user) == {"percent_thresholds": [90, 99], "tag_mode": "path"}
    user_json = tmp_path / "agg.json"
    user_json.write_text('{"delete_idle_stats": true}')
    assert config.aggregator_settings(user_json) == {"delete_idle_stats": True, "tag_mode": "path"}


def test_graphite_tags_are_refused_naming_the_key(tmp_path: Path):
    user = tmp_path / "agg.toml"
    user.write_text('tag_mode = "graphite"\n')
    with pytest.raises(ConfigError, match="tag_mode = 'graphite'"):
        config.aggregator_settings(user)


def test_unreadable_aggregator_config_names_the_file(tmp_path: Path):
    user = tmp_path / "agg.toml"
    user.write_text("percent_thresholds = [90\n")
    with pytest.raises(ConfigError, match=r"agg\.toml"):
        config.aggregator_settings(user)
    with pytest.raises(ConfigError, match=r"missing\.toml"):
        config.aggregator_settings(tmp_path / "missing.toml")


def test_unknown_template_field_names_file_and_field(tmp_path: Path):
    templates = graphite_config(tmp_path / "templates")
    conf = templates / "carbon.conf"
    conf.write_text(conf.read_text() + "SOMETHING = ${no_such_field}\n")
    with pytest.raises(ConfigError, match=r"carbon\.conf: unknown field \$\{no_such_field\}"):
        config.render(Layout.build(tmp_path / "var"), templates)


def test_missing_template_is_named(tmp_path: Path):
    templates = graphite_config(tmp_path / "templates")
    (templates / "graphite-render.yaml").unlink()
    with pytest.raises(ConfigError, match=r"graphite-render\.yaml"):
        config.render(Layout.build(tmp_path / "var"), templates)
