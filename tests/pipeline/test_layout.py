from pathlib import Path

import pytest

from statsd_metrics.supervisor.layout import FLUSH_INTERVALS, Layout, LayoutError, Ports


def test_one_machine_has_one_cache_no_relay_and_feeds_the_cache(tmp_path: Path):
    layout = Layout.build(tmp_path)
    assert [c.instance for c in layout.caches] == ["a"]
    assert layout.relay_port is None
    assert layout.carbon_port == layout.caches[0].line_port == 2003
    assert [(a.port, a.mgmt_port) for a in layout.aggregators] == [(8125, 8126)]
    assert layout.render_port == 8888


def test_cluster_numbers_instances_by_hundreds_and_feeds_the_relay(tmp_path: Path):
    ports = Ports(statsd=9125, mgmt=9126, carbon=3003, pickle=3004, carbonlink=8002, relay=3013)
    layout = Layout.build(tmp_path, ports, caches=2, aggregators=2)
    assert [(c.instance, c.line_port, c.pickle_port, c.carbonlink_port) for c in layout.caches] == [
        ("a", 3003, 3004, 8002),
        ("b", 3103, 3104, 8102),
    ]
    assert [(a.port, a.mgmt_port) for a in layout.aggregators] == [(9125, 9126), (9225, 9226)]
    assert layout.carbon_port == layout.relay_port == 3013


def test_files_live_under_the_data_dir(tmp_path: Path):
    layout = Layout.build(tmp_path / "var", caches=2)
    cache_b = layout.caches[1]
    assert layout.whisper_dir(cache_b) == tmp_path / "var" / "carbon-b" / "whisper"
    assert layout.carbon_conf(cache_b).parent == tmp_path / "var" / "conf" / "carbon-b"


def test_storage_only_layout_has_no_aggregator(tmp_path: Path):
    assert Layout.build(tmp_path, aggregators=0).aggregators == ()


@pytest.mark.parametrize("interval", [0.5, 7, 90, 1.5])
def test_flush_interval_must_be_whole_seconds_dividing_a_minute(tmp_path: Path, interval):
    with pytest.raises(LayoutError, match="--flush-interval"):
        Layout.build(tmp_path, flush_interval=interval)


def test_accepted_flush_intervals():
    assert FLUSH_INTERVALS == (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60)


@pytest.mark.parametrize(("caches", "aggregators"), [(0, 1), (27, 1), (1, -1)])
def test_instance_counts_are_bounded(tmp_path: Path, caches, aggregators):
    with pytest.raises(LayoutError):
        Layout.build(tmp_path, caches=caches, aggregators=aggregators)
