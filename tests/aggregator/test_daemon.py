"""Black-box: the real daemon on loopback ports, real datagrams, lines at a fake Carbon."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import ROOT, Sink, free_port, run_aggregator, wait_until

pytestmark = pytest.mark.slow


def has(*lines: str):
    return lambda flush: all(flush.get(p) == v for p, v in (line.split(" ") for line in lines))


def test_every_metric_type_reaches_carbon(start_daemon, sink):
    d = start_daemon()
    after = d.send_fresh(
        b"api.hits:3|c\napi.hits:1|c|@0.5\napi.lat:30|ms\napi.lat:10|ms:20|ms\n"
        b"api.depth:7|g\napi.depth:-2|g\nusers:alice|s\nusers:bob|s\nusers:alice|s\n"
        b"req:1|c|#status:200,method:get\ndisk:5|h"
    )
    flush = sink.wait_flush(lambda f: "stats.api.hits" in f, after)
    expected = {
        "stats.api.hits": "25",  # 5 per 0.2 s
        "stats_counts.api.hits": "5",
        "stats.timers.api.lat.count": "3",
        "stats.timers.api.lat.count_ps": "15",
        "stats.timers.api.lat.mean": "20",
        "stats.timers.api.lat.median": "20",
        "stats.timers.api.lat.upper_90": "30",
        "stats.timers.api.lat.std": "8.16496580927726",
        "stats.timers.disk.sum": "5",
        "stats.gauges.api.depth": "5",
        "stats.sets.users.count": "2",
        "stats_counts.req;status=200;method=get": "1",
        "stats_counts.statsd.metrics_received": "11",
        "stats_counts.statsd.packets_received": "1",
        "stats_counts.statsd.bad_lines_seen": "0",
    }
    assert {k: flush.get(k) for k in expected} == expected
    assert flush["statsd.numStats"] == "10"
    # graphiteStats and spool gauges are stamped at write time, the rest at flush time
    stamps = {
        ts for path, _, ts in sink.flushes()[after] if "Stats" not in path and ".spool." not in path
    }
    assert len(stamps) == 1
    assert abs(stamps.pop() - time.time()) < 5


def test_float_sums_and_gauge_deltas_across_datagrams(start_daemon, sink):
    d = start_daemon()
    after = d.send_fresh(b"c:0.1|c", b"c:0.1|c", b"c:0.1|c", b"g:3|g", b"g:-10|g")
    flush = sink.wait_flush(lambda f: "stats_counts.c" in f, after)
    assert flush["stats_counts.c"] == "0.30000000000000004"
    assert flush["stats.gauges.g"] == "-7"


def test_idle_metrics_keep_reporting_like_the_reference(start_daemon, sink):
    d = start_daemon()
    after = d.send_fresh(b"c:1|c\nt:1|ms\ng:4|g\ns:x|s")
    sink.wait_flush(lambda f: f.get("stats_counts.c") == "1", after)
    idle = sink.wait_flush(has("stats_counts.c 0"), after + 1)
    assert idle["stats.timers.t.count"] == "0"
    assert "stats.timers.t.mean" not in idle
    assert idle["stats.gauges.g"] == "4"
    assert idle["stats.sets.s.count"] == "0"
    assert "stats.gauges.statsd.timestamp_lag" in idle


def test_config_file_options_and_tag_mode_path(start_daemon, sink):
    d = start_daemon(
        {
            "tag_mode": "path",
            "legacy_namespace": False,
            "global_prefix": "app",
            "global_suffix": "host1",
            "percent_thresholds": [50, -50],
            "histogram": [{"metric": "lat", "bins": [10, "inf"]}],
            "delete_idle_stats": True,
        }
    )
    after = d.send_fresh(b"http.req:1|c|#status:500,route:home\nlat:5|ms:15|ms")
    flush = sink.wait_flush(lambda f: any(k.startswith("app.counters.http") for k in f), after)
    assert flush["app.counters.http.req.route-home--status-500.rate.host1"] == "5"
    assert flush["app.counters.http.req.route-home--status-500.count.host1"] == "1"
    assert flush["app.timers.lat.upper_50.host1"] == "5"
    assert flush["app.timers.lat.lower_top50.host1"] == "15"
    assert flush["app.timers.lat.histogram.bin_10.host1"] == "1"
    assert flush["app.timers.lat.histogram.bin_inf.host1"] == "1"
    assert not [k for k in flush if ";" in k]
    later = sink.wait_flush(lambda f: "app.timers.lat.upper_50.host1" not in f, after + 1)
    assert not [k for k in later if "http" in k]  # deleted when idle


@pytest.mark.parametrize(
    ("config", "datagram", "expected"),
    [
        (
            {"flush_counts": False, "prefix_stats": "agg"},
            b"c:2|c",
            {"stats.c": "10", "stats_counts.c": None, "agg.numStats": "5"},  # + timestamp_lag
        ),
        (
            {
                "legacy_namespace": False,
                "prefix_counter": "",
                "prefix_timer": "t",
                "prefix_set": "u",
            },
            b"c:1|c\nlat:4|d\nusers:a|s",
            {"stats.c.rate": "5", "stats.t.lat.mean": "4", "stats.u.users.count": "1"},
        ),
        (
            {"calculated_timer_metrics": ["mean", "upper_percent"], "percent_thresholds": 99.9},
            b"t:1|ms:3|ms",
            {
                "stats.timers.t.mean": "2",
                "stats.timers.t.upper_99_9": "3",
                "stats.timers.t.sum": None,
            },
        ),
        (
            {"key_name_sanitize": False},
            b"a/b c:1|c|#k:v",
            {"stats_counts.a-b_c;k=v": "1"},
        ),
    ],
)
def test_options_end_to_end(start_daemon, sink, config, datagram, expected):
    d = start_daemon(config)
    after = d.send_fresh(datagram)
    present = [k for k, v in expected.items() if v is not None]
    flush = sink.wait_flush(lambda f: all(k in f for k in present), after)
    assert {k: flush.get(k) for k in expected} == expected


def test_gauge_ttl_end_to_end(start_daemon, sink):
    d = start_daemon({"delete_gauges": True, "gauges_max_ttl": 2})
    after = d.send_fresh(b"g:5|g")

    def gauge_in_each_flush() -> list[bool]:
        return [any(p == "stats.gauges.g" for p, _, _ in f) for f in sink.flushes()[after:]]

    wait_until(lambda: len(gauge_in_each_flush()) >= 4, what="four flushes")
    assert gauge_in_each_flush()[:4] == [True, True, False, False]


def test_bad_input_is_counted_never_fatal(start_daemon, sink):
    d = start_daemon({"max_datagram_size": 1000, "max_metric_names": 20})
    after = d.send_fresh(
        b"ok:1|c\nbad\nx:0x10|c\ny:1|q\nz:-1|ms\nw:nan|g\n\xff\xfe:1|c",
        b"big:1|c\n" * 200,
        b"ok:1|c",
    )
    flush = sink.wait_flush(lambda f: "stats_counts.ok" in f, after)
    assert flush["stats_counts.ok"] == "2"
    assert flush["stats_counts.statsd.bad_lines_seen"] == "7"
    assert flush["stats_counts.statsd.packets_received"] == "3"
    stats = d.mgmt("stats")
    for reason in ("no_value", "unknown_type", "negative_timer", "invalid_utf8"):
        assert f"messages.rejected.{reason}: 1" in stats
    assert "messages.rejected.bad_value: 2" in stats
    assert "messages.rejected.oversized_datagram: 1" in stats
    assert "messages.bad_lines_seen: 7" in stats
    # the name cap of 20: 3 internal counters, `ok`, the timestamp_lag gauge, 15 more
    d.send(b"\n".join(b"n%d:1|c" % i for i in range(30)))
    capped = sink.wait_flush(lambda f: "stats_counts.n0" in f, after)
    assert len([k for k in capped if k.startswith("stats_counts.n")]) == 15
    assert capped["stats_counts.statsd.bad_lines_seen"] == "15"
    assert d.http()[0] == 200


def test_tcp_unix_and_ipv6_inputs(start_daemon, sink, tmp_path):
    tcp_port = free_port()
    unix_path = str(tmp_path / "statsd.sock")
    d = start_daemon({"tcp_port": tcp_port, "unix_socket": unix_path, "bind_ipv6": "::1"})
    after = sink.next_flush()
    with socket.create_connection(("127.0.0.1", tcp_port)) as s:
        s.sendall(b"tcp:1|c\ntcp:2")
        s.sendall(b"|c\ntcp:4|c")  # a last line without newline counts at close
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(b"unix:5|c", unix_path)
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
        s.sendto(b"six:6|c", ("::1", d.port))
    flush = sink.wait_flush(
        lambda f: all(f"stats_counts.{k}" in f for k in ("tcp", "unix", "six")), after
    )
    assert flush.get("stats_counts.tcp") == "7"
    assert (flush["stats_counts.unix"], flush["stats_counts.six"]) == ("5", "6")
    assert d.stop() == 0
    assert not os.path.exists(unix_path)  # removed on the way out


def test_management_commands_and_http_health(start_daemon, sink):
    d = start_daemon()
    assert d.mgmt("help").startswith("Commands: stats, counters, timers, gauges, delcounters")
    assert d.mgmt("health") == "health: up\n"
    assert d.mgmt("health down") == "health: down\n"
    assert d.http()[0] == 503
    assert d.mgmt("health up") == "health: up\n"
    status, body = d.http("/health")
    assert status == 200
    assert json.loads(body)["health"] == "up"
    assert d.http("/nope")[0] == 404
    assert d.mgmt("bogus") == "ERROR\n"
    d.send(b"app.a:1|c\napp.b:2|c\nother:3|c\nt:5|ms\ng:9|g")
    wait_until(lambda: '"app.a": 1' in d.mgmt("counters"), what="live counters")
    assert '"t": [\n  5.0\n ]' in d.mgmt("timers")
    assert '"g": 9' in d.mgmt("gauges")
    sink.wait_flush(lambda f: "stats_counts.app.a" in f)
    deleted = d.mgmt("delcounters app.* missing")
    assert "deleted: app.a\n" in deleted
    assert "deleted: app.b\n" in deleted
    assert deleted.endswith("metric missing not found\nEND\n\n")
    after = sink.next_flush()
    flush = sink.wait_flush(lambda f: "stats_counts.other" in f, after)
    assert "stats_counts.app.a" not in flush
    stats = d.mgmt("stats")
    assert stats.startswith("uptime: ")
    assert "graphite.last_flush: " in stats
    assert stats.endswith("END\n\n")
    assert "port: " in d.mgmt("config")
    assert d.mgmt("health\nquit\nhealth") == "health: up\n"


def test_initial_health_status_from_the_config(start_daemon):
    d = start_daemon({"health_status": "down"}, wait=False)
    wait_until(lambda: _status(d) == 503, what="503 from a daemon configured down")


def _status(d) -> int | None:
    try:
        return d.http()[0]
    except OSError:
        return None


def test_sigterm_delivers_a_final_flush(start_daemon, sink):
    d = start_daemon(flush=30)
    d.send(b"last:42|c")
    wait_until(lambda: "last" in d.mgmt("counters"), what="the counter to arrive")
    assert d.stop() == 0
    flush = sink.wait_flush(lambda f: "stats_counts.last" in f)
    assert flush["stats_counts.last"] == "42"
    assert "stopping: final flush" in d.log()


def test_carbon_down_spools_and_replays_in_order(start_daemon, tmp_path):
    port = free_port()
    d = start_daemon(flush=0.2, graphite_port=port)
    d.send(b"spooled:1|c")
    spool = tmp_path / "spool0"
    wait_until(lambda: len(list(spool.glob("*.txt"))) >= 3, what="spooled flushes")
    first_ts = min(int(p.stem.split("-")[1]) for p in spool.glob("*.txt"))
    time.sleep(1.1)  # so that replayed timestamps are visibly older than new ones
    carbon = Sink(port)
    try:
        wait_until(lambda: any("stats_counts.spooled 1 " in line for line in carbon.lines))
        stamps = [int(line.split()[2]) for line in carbon.lines]
        assert stamps[0] == first_ts
        assert stamps == sorted(stamps)
        line = next(line for line in carbon.lines if line.startswith("stats_counts.spooled 1 "))
        assert int(line.split()[2]) < time.time() - 0.5
        wait_until(lambda: not list(spool.glob("*.txt")), what="an empty spool")
        # The replayed history shows the spool growing through the outage.
        sizes = [int(line.split()[1]) for line in carbon.lines
                 if line.startswith("stats.gauges.statsd.spool.flushes ")]  # fmt: skip
        assert sizes[0] == 0
        assert max(sizes) >= 2
    finally:
        d.stop()
        carbon.close()


def test_sighup_reloads_the_config(start_daemon, sink):
    d = start_daemon()
    reloaded = {"global_suffix": "reloaded", "max_line_length": 20}
    d.config_path.write_text(json.dumps(json.loads(d.config_path.read_text()) | reloaded))
    os.kill(d.process.pid, signal.SIGHUP)
    wait_until(lambda: "config reloaded" in d.log(), what="the reload")
    time.sleep(0.1)  # the receivers take the new limits from their pipe
    d.send(b"r:1|c\n" + b"x" * 30 + b":1|c")
    flush = sink.wait_flush(lambda f: "stats_counts.r.reloaded" in f)
    assert flush["stats_counts.r.reloaded"] == "1"
    assert flush["stats_counts.statsd.bad_lines_seen.reloaded"] == "1"  # the 34-byte line


def test_a_bad_reload_keeps_the_running_config(start_daemon, sink):
    d = start_daemon()
    d.config_path.write_text('{"percent_thresholds": "x"}')
    os.kill(d.process.pid, signal.SIGHUP)
    wait_until(lambda: "config not reloaded" in d.log(), what="the rejected reload")
    assert "'percent_thresholds'" in d.log()
    assert d.http()[0] == 200


def _run_to_exit(args: list[str], tmp_path) -> tuple[int, str]:
    log = tmp_path / "exit.log"
    process = run_aggregator(args, log)
    try:
        code = process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise
    return code, log.read_text()


def test_a_taken_port_stops_the_start_with_a_message_naming_it(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        code, out = _run_to_exit(["--port", str(port), "--mgmt-port", str(free_port())], tmp_path)
    assert code != 0
    assert f"UDP 127.0.0.1 port {port}: already in use" in out
    with socket.create_server(("127.0.0.1", 0)) as taken:
        mgmt = taken.getsockname()[1]
        udp = free_port(socket.SOCK_DGRAM)
        code, out = _run_to_exit(["--port", str(udp), "--mgmt-port", str(mgmt)], tmp_path)
    assert code != 0
    assert f"TCP 127.0.0.1 port {mgmt}: already in use" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "0"], "'port': port 0 must be between 1 and 65535"),
        (["--mgmt-port", "0"], "'mgmt_port': port 0"),
        (["--flush-interval", "-1"], "'flush_interval'"),
    ],
)
def test_bad_flags_stop_the_start(args, message, tmp_path):
    code, out = _run_to_exit(args, tmp_path)
    assert code == 2
    assert message in out


def test_unknown_config_key_stops_the_start(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("flushInterval = 10\n")
    code, out = _run_to_exit(["--config", str(path)], tmp_path)
    assert code == 2
    assert "'flushInterval': unknown key" in out


def test_console_script_and_module_agree():
    out = subprocess.run(
        [sys.executable, "-m", "aggregator", "--help"],
        check=True,
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout
    for flag in ("--config", "--bind", "--port", "--graphite-host", "--graphite-port",
                 "--flush-interval", "--mgmt-port"):  # fmt: skip
        assert flag in out


def test_receivers_exit_when_the_flusher_is_killed(start_daemon):
    d = start_daemon()
    pid = d.process.pid
    children = [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    assert len(children) == 2
    d.stop(signal.SIGKILL)
    wait_until(lambda: not any(os.path.exists(f"/proc/{c}") for c in children), what="exit")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", d.port))  # the port is free again
