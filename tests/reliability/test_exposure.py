"""What the pipeline exposes: every listener on loopback unless configured otherwise, a
management port that asks for a token off loopback, and a render API that cannot write.

Listeners are read from the kernel (/proc/net/{tcp,udp,unix} against each process's sockets),
not from our configuration: a part that opened something of its own shows up too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from support.net import free_port
from tests.aggregator.conftest import run_aggregator

from .conftest import listeners

pytestmark = pytest.mark.slow

TOKEN = "k9f2-mgmt-token-0a7c31"


def test_every_listener_of_the_whole_pipeline_is_on_loopback(start_up):
    # The cluster layout (relay, two caches, two aggregators) and the demo app with its CHPP
    # simulator: every kind of part there is.
    up = start_up(
        "--caches", "2", "--aggregators", "2", "--demo", "--flush-interval", "1", instances=2
    ).wait_ready()
    found = listeners(up.process.pid)
    p = up.ports
    parts = {("udp", p.statsd), ("tcp", p.mgmt), ("tcp", p.carbon), ("tcp", p.pickle),
             ("tcp", p.carbonlink)}  # fmt: skip
    expected = {(proto, "127.0.0.1", port + n) for proto, port in parts for n in (0, 100)}
    expected |= {("tcp", "127.0.0.1", p.relay), ("tcp", "127.0.0.1", p.render)}
    assert expected <= found  # each part listens where `up` says
    assert {host for _, host, _ in found} == {"127.0.0.1"}  # the demo's app too; no IPv6
    assert not [f for f in found if f[0] == "unix"]  # no control socket in $HOME either


def test_the_aggregator_listens_where_it_is_configured_and_nowhere_else(start_daemon, tmp_path):
    tcp_port = free_port()
    unix_path = str(tmp_path / "statsd.sock")
    d = start_daemon({"bind": "127.0.0.2", "tcp_port": tcp_port, "unix_socket": unix_path})
    assert listeners(d.process.pid) == {
        ("udp", "127.0.0.2", d.port),
        ("tcp", "127.0.0.2", tcp_port),
        ("tcp", "127.0.0.1", d.mgmt_port),  # commands and HTTP health, on one port
        ("unix", unix_path, 0),
    }


@pytest.mark.parametrize("bind", ["0.0.0.0", "::", "statsd.example.net"])
def test_a_management_port_off_loopback_without_a_token_is_refused_at_start(bind, tmp_path):
    config = tmp_path / "aggregator.json"
    config.write_text(json.dumps({"mgmt_bind": bind}))
    log = tmp_path / "out.log"
    args = ["--config", str(config), "--port", str(free_port()), "--mgmt-port", str(free_port())]
    assert run_aggregator(args, log).wait(30) == 2  # before anything is bound
    assert "config key 'mgmt_token': required when mgmt_bind" in log.read_text()


def test_a_management_token_guards_the_commands_not_the_health_check(start_daemon):
    d = start_daemon({"mgmt_token": TOKEN})
    d.send(b"private.name:1|c")
    for attempt in ("counters", "delcounters private.*", "health down", "auth not-the-token-00"):
        assert d.mgmt(attempt) == "ERROR auth\n"  # and the connection is closed
    assert d.mgmt(f"auth {TOKEN}\nhealth") == "auth: ok\nhealth: up\n"
    answer = d.mgmt(f"auth {TOKEN}\ncounters")
    assert answer.startswith("auth: ok\n")
    assert "private.name" in answer
    config = d.mgmt(f"auth {TOKEN}\nconfig")
    assert "mgmt_token: (set)" in config
    assert TOKEN not in config
    assert d.http()[0] == 200  # orchestrators probe health without the token
    assert "mgmt: refused" in d.log()
    assert TOKEN not in d.log()


def render_api_routes(config: Path) -> dict[str, list[str]]:
    """graphite-render's own URL map: {rule: methods}, read in a child process (the app
    configures itself from GRAPHITE_API_CONFIG when imported)."""
    code = (
        "import json; from graphite_render.app import app; print(json.dumps({r.rule: "
        "sorted(r.methods) for r in app.url_map.iter_rules()}))"
    )
    env = {**os.environ, "GRAPHITE_API_CONFIG": str(config)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.splitlines()[-1])


def status(url: str, method: str, body: bytes | None = None) -> int:
    request = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file() and "log" not in p.parts}


def test_the_render_api_offers_no_way_to_write(start_up):
    up = start_up("--aggregators", "0", "--flush-interval", "1").wait_ready()
    routes = render_api_routes(up.data_dir / "conf" / "graphite-render.yaml")
    # Reads only: queries, finds, and no-op dashboard and event stubs. A new route (an
    # upgrade) fails this test until someone has looked at what it does.
    assert set(routes) == {
        "/render", "/metrics", "/metrics/find", "/metrics/expand", "/metrics/index.json",
        "/dashboard/find", "/dashboard/load/<name>", "/events/get_data",
        "/static/<path:filename>",
    }  # fmt: skip
    assert all(set(methods) <= {"GET", "HEAD", "OPTIONS", "POST"} for methods in routes.values())
    before = files(up.data_dir)
    for rule in routes:
        url = up.render_url + rule.replace("<name>", "x").replace("<path:filename>", "x")
        for method in ("PUT", "DELETE", "PATCH"):
            assert status(url, method) == 405, (method, rule)
    # POST is a query: it reads (the body holds the targets), it stores nothing.
    body = b"target=app.written&target=constantLine(1)&from=-1min&format=json"
    assert status(up.render_url + "/render", "POST", body) == 200
    assert files(up.data_dir) == before
