"""`statsd-metrics up` as a user and a script see it: output, stopping, and every way it refuses."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path

import pytest
import whisper

from support.pipeline import graphite_config, points, wait_for

pytestmark = pytest.mark.slow

STORAGE_ONLY = ("--aggregators", "0", "--flush-interval", "1")


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_prints_one_address_a_line_and_stops_on_ctrl_c(start_up):
    up = start_up(*STORAGE_ONLY).wait_ready()
    assert up.addresses == {
        "carbon": [f"tcp://127.0.0.1:{up.ports.carbon}"],
        "dashboards": [f"http://127.0.0.1:{up.ports.render}/dashboards/"],
        "render API": [f"http://127.0.0.1:{up.ports.render}"],
    }
    assert up.render("constantLine(1)", "-1min")[0]["datapoints"]
    # Ctrl-C reaches `up` alone (its parts run in their own session) and it stops them in order.
    assert up.stop(signal.SIGINT) == 0
    assert "stopped" in up.stderr()
    for port in (up.ports.carbon, up.ports.carbonlink, up.ports.render):
        assert port_is_free(port)


def test_cached_points_are_served_and_written_to_whisper_on_sigterm(start_up, tmp_path: Path):
    # timesorted + MIN_TIMESTAMP_LAG keeps recent points in carbon's cache for an hour.
    templates = graphite_config(
        tmp_path / "templates", CACHE_WRITE_STRATEGY="timesorted", MIN_TIMESTAMP_LAG=3600
    )
    up = start_up(*STORAGE_ONLY, "--graphite-config", str(templates)).wait_ready()
    now = int(time.time())
    # An old point is written at once, creating the file (carbon writes all of a series' cached
    # points together, hence two sends); then a recent one, which stays in the cache.
    up.send_plaintext([f"app.cached 1 {now - 7200}"])
    wait_for(up.whisper_file("app.cached").exists, what="the Whisper file")
    up.send_plaintext([f"app.cached 7 {now}"])
    rendered = wait_for(
        lambda: [s for s in up.render("app.cached", now - 7201, now + 1) if now in points(s)],
        what="the cached point in the render API",
    )
    assert points(rendered[0]) == {now - 7200: 1.0, now: 7.0}
    # Read after the render: the point was not in Whisper, so it came from carbonlink.
    path = str(up.whisper_file("app.cached"))
    (_, _, step), values = whisper.fetch(path, now - 1, now + 1)
    assert step == 1
    assert 7.0 not in values

    assert up.stop(signal.SIGTERM) == 0
    (start, _, _), values = whisper.fetch(path, now - 1, now + 1)
    assert values[now - start] == 7.0


def test_taken_port_fails_at_once_and_names_it(start_up):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        began = time.monotonic()
        up = start_up(*STORAGE_ONLY, "--render-port", str(port))
        assert up.process.wait(30) == 1
    assert time.monotonic() - began < 10
    assert f"render API: tcp port 127.0.0.1:{port} is not available" in up.stderr()
    assert not (up.data_dir / "log").exists()  # nothing was started


def test_taken_statsd_port_is_named(start_up):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
        squatter.bind(("127.0.0.1", 0))
        port = squatter.getsockname()[1]
        up = start_up("--flush-interval", "1", "--statsd-port", str(port))
        assert up.process.wait(30) == 1
    assert f"aggregator 0: udp port 127.0.0.1:{port} is not available" in up.stderr()


def test_bad_aggregator_config_ends_it_with_the_aggregators_message(start_up, tmp_path: Path):
    settings = tmp_path / "aggregator.toml"
    settings.write_text("percent_thresholds = [90]\nflush_intervall = 3\n")
    up = start_up("--flush-interval", "1", "--aggregator-config", str(settings))
    assert up.process.wait(60) == 1
    stderr = up.stderr()
    assert "aggregator 0 exited during start-up" in stderr
    assert "flush_intervall" in stderr


def test_missing_dependency_is_named(start_up):
    # The cluster layout needs carbon-c-relay; hide it from PATH.
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}
    up = start_up(*STORAGE_ONLY, "--caches", "2", instances=2, env=env)
    assert up.process.wait(30) == 1
    assert "program 'carbon-c-relay' is not on PATH" in up.stderr()


def test_bad_flush_interval_is_refused(start_up):
    up = start_up("--aggregators", "0", "--flush-interval", "0.5")
    assert up.process.wait(30) == 1
    assert "--flush-interval 0.5: must be a whole number of seconds" in up.stderr()


def test_bad_storage_schema_ends_it_with_carbons_own_message(start_up, tmp_path: Path):
    templates = graphite_config(tmp_path / "templates")
    schemas = templates / "storage-schemas.conf"
    schemas.write_text(schemas.read_text().replace("60s:90d", "60s:90q"))
    up = start_up(*STORAGE_ONLY, "--graphite-config", str(templates))
    assert up.process.wait(60) == 1
    stderr = up.stderr()
    assert "carbon-cache a exited during start-up" in stderr
    assert "Invalid unit 'q'" in stderr
    assert "storage-schemas.conf" in stderr


def test_one_up_per_data_directory(start_up, tmp_path: Path):
    first = start_up(*STORAGE_ONLY, data_dir=tmp_path / "shared").wait_ready()
    second = start_up(*STORAGE_ONLY, data_dir=tmp_path / "shared")
    assert second.process.wait(30) == 1
    assert f"is in use by another `statsd-metrics up` (pid {first.process.pid})" in second.stderr()


def test_killed_up_takes_its_parts_down(start_up):
    up = start_up(*STORAGE_ONLY).wait_ready()
    pidfile = up.data_dir / "carbon-a" / "carbon-cache-a.pid"
    carbon_pid = int(pidfile.read_text())
    up.process.kill()
    up.process.wait(10)
    wait_for(lambda: not Path(f"/proc/{carbon_pid}").exists(), what="carbon-cache to exit")
    wait_for(lambda: port_is_free(up.ports.render), what="the render API to exit")
