"""The `statsd-metrics` command without servers: init, --config-dir, the data directory,
the order of `up`'s checks, and a missing extra named with what to install."""

from __future__ import annotations

import argparse
import fcntl
import os
import socket
import subprocess
import sys
import tomllib
from dataclasses import fields
from pathlib import Path

import pytest

from aggregator import config as aggregator_config
from statsd_metrics import cli
from statsd_metrics.graphite import config
from statsd_metrics.graphite.config import ConfigError
from statsd_metrics.supervisor import PipelineError
from statsd_metrics.supervisor.layout import Layout, Ports

TEMPLATE = Path(aggregator_config.__file__).with_name("aggregator.toml")


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "statsd_metrics", *args],
        check=False, capture_output=True, text=True, timeout=60, cwd=cwd, env=env,
    )  # fmt: skip


def test_init_writes_an_editable_copy_and_never_overwrites(tmp_path: Path):
    target = tmp_path / "conf"
    done = run_cli("init", str(target), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"up --config-dir {target}" in done.stdout
    for name in ("aggregator.toml", "carbon.conf", "storage-schemas.conf",
                 "storage-aggregation.conf", "graphite-render.yaml", "carbon-c-relay.conf",
                 "grafana/provisioning/datasources/graphite.yaml",
                 "grafana/provisioning/alerting/rules.yaml",
                 "grafana/dashboards/service.json"):  # fmt: skip
        assert (target / name).is_file(), name
    assert (target / "carbon.conf").read_text() == (config.GRAPHITE_DIR / "carbon.conf").read_text()

    (target / "carbon.conf").write_text("# edited\n")
    again = run_cli("init", str(target), cwd=tmp_path)
    assert again.returncode == 1
    assert "exists" in again.stderr
    assert "nothing was written" in again.stderr
    assert (target / "carbon.conf").read_text() == "# edited\n"


def test_init_into_an_impossible_place_is_one_line(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    done = run_cli("init", str(blocker / "conf"), cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0
    assert "cannot write it" in done.stderr


def test_aggregator_template_names_every_key_at_its_default():
    """Uncommented, the template is the defaults: a key added to the aggregator without a line
    here fails this test."""
    lines = [line[2:] for line in TEMPLATE.read_text().splitlines() if line.startswith("# ")]
    settings = {}
    for line in lines:
        try:
            settings.update(tomllib.loads(line))
        except tomllib.TOMLDecodeError:
            continue  # prose
    keys = {f.name for f in fields(aggregator_config.Config)} - {"source"}
    assert keys - settings.keys() == set(), "keys missing from aggregator/aggregator.toml"
    assert settings.keys() - keys == set()
    parsed = aggregator_config.from_mapping(settings)
    default = aggregator_config.Config()
    for kind in ("counters", "timers", "gauges", "sets"):
        assert parsed.deletes(kind) == default.deletes(kind)
        settings.pop(f"delete_{kind}")
    for key in settings:
        assert getattr(parsed, key) == getattr(default, key), key


def namespace(**given) -> argparse.Namespace:
    return cli.build_parser().parse_args(["up", *given.get("argv", [])])


def test_config_dir_supplies_templates_and_aggregator_settings(tmp_path: Path):
    config.write_editable_copy(tmp_path / "conf")
    args = namespace(argv=["--config-dir", str(tmp_path / "conf")])
    templates, settings = cli._config_sources(args)
    assert templates == tmp_path / "conf"
    assert settings == tmp_path / "conf" / "aggregator.toml"
    # All commented: up's own settings only.
    assert config.aggregator_settings(settings) == {"tag_mode": "path"}
    layout = Layout.build(tmp_path / "var", Ports())
    config.render(layout, templates, settings)
    assert "LINE_RECEIVER_PORT = 2003" in layout.carbon_conf(layout.caches[0]).read_text()

    shipped, none = cli._config_sources(namespace())
    assert shipped == config.GRAPHITE_DIR
    assert none is None
    with pytest.raises(ConfigError, match="not a directory"):
        cli._config_sources(namespace(argv=["--config-dir", str(tmp_path / "missing")]))


@pytest.mark.parametrize("where", ["file", "under-a-file"])
def test_impossible_data_dir_is_one_clear_line(tmp_path: Path, where: str):
    blocker = tmp_path / "file"
    blocker.write_text("")
    data_dir = blocker if where == "file" else blocker / "var"
    with (
        pytest.raises(PipelineError, match=f"--data-dir {data_dir}: ") as raised,
        cli.data_dir_lock(data_dir),
    ):
        pass
    assert "\n" not in str(raised.value)
    done = run_cli("up", "--data-dir", str(data_dir), cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1].startswith(
        f"statsd-metrics up: error: --data-dir {data_dir}"
    )
    assert "Traceback" not in done.stderr


def test_data_dir_in_use_is_reported_before_taken_ports(tmp_path: Path):
    (tmp_path / "var").mkdir()
    with (tmp_path / "var" / "up.lock").open("a+") as lock, socket.socket() as squatter:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        done = run_cli("up", "--data-dir", str(tmp_path / "var"), "--render-port", str(port),
                       cwd=tmp_path)  # fmt: skip
    assert done.returncode == 1
    assert "is in use by another `statsd-metrics up`" in done.stderr
    assert "not available" not in done.stderr


def test_every_taken_port_is_reported_at_once_with_its_flag(tmp_path: Path):
    with socket.socket() as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        tcp.bind(("127.0.0.1", 0))
        tcp.listen()
        udp.bind(("127.0.0.1", 0))
        render, statsd = tcp.getsockname()[1], udp.getsockname()[1]
        done = run_cli("up", "--data-dir", str(tmp_path / "var"), "--render-port", str(render),
                       "--statsd-port", str(statsd), cwd=tmp_path)  # fmt: skip
    assert done.returncode == 1
    assert "2 ports are not available, nothing was started" in done.stderr
    assert f"render API: tcp port 127.0.0.1:{render} is not available" in done.stderr
    assert "choose another with --render-port" in done.stderr
    assert f"aggregator 0: udp port 127.0.0.1:{statsd} is not available" in done.stderr
    assert "choose another with --statsd-port" in done.stderr
    assert not (tmp_path / "var" / "log").exists()  # nothing was started


def test_addresses_name_everything_a_person_needs(tmp_path: Path):
    layout = Layout.build(tmp_path, Ports())
    assert cli.addresses(layout) == [
        "statsd: udp://127.0.0.1:8125",
        "aggregator health: http://127.0.0.1:8126/health",
        "carbon: tcp://127.0.0.1:2003",
        "dashboards: http://127.0.0.1:8888/dashboards/",
        "render API: http://127.0.0.1:8888",
    ]


# Runs the command with these modules made unimportable, as in an install without the extra.
WITHOUT = """
import sys
for name in sys.argv[1].split(","):
    sys.modules[name] = None
from statsd_metrics.cli import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize(
    ("hidden", "argv", "extra"),
    [
        ("yaml", ["alerts", "check"], "grafana"),
        ("yaml,grafana_foundation_sdk", ["alerts", "check", "--json"], "grafana"),
    ],
)
def test_a_missing_extra_is_named_not_a_traceback(tmp_path: Path, hidden, argv, extra):
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT, hidden, *argv],
        check=False, capture_output=True, text=True, timeout=60, cwd=tmp_path,
        env={**os.environ},
    )  # fmt: skip
    assert done.returncode == 1
    assert f'pip install "statsd-metrics[{extra}]"' in done.stderr
    assert "Traceback" not in done.stderr


def test_up_demo_without_the_demo_extra_says_which(tmp_path: Path):
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT, "flask", "up", "--demo", "--data-dir",
         str(tmp_path / "var")],
        check=False, capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 1
    assert 'pip install "statsd-metrics[demo]"' in done.stderr
    assert "Traceback" not in done.stderr
