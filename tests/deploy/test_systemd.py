"""The systemd units in deploy/systemd: systemd itself accepts them, their hardening holds, and
the aggregator's unit gives the daemon's final flush the time it takes when Carbon hangs.

`systemd-analyze` comes with Debian's `systemd` package (scripts/system-deps installs it).
"""

from __future__ import annotations

import configparser
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.aggregator.conftest import free_port, wait_until
from tests.reliability.conftest import StalledCarbon

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
INSTALL_BIN = "/opt/statsd-metrics/bin"  # where the units expect the package's venv

needs_systemd = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze not installed (Debian package systemd: ./scripts/system-deps)",
)


def unit(path: Path) -> configparser.ConfigParser:
    """A unit file read as INI; a repeated key (SystemCallFilter=) keeps its last value."""
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text())
    return parser


def installed_copy(path: Path, tmp_path: Path) -> Path:
    """The unit with its venv at tmp_path/bin, where stand-in programs exist: `verify` checks
    that ExecStart names an executable file, and nothing else about it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for program in re.findall(rf"{INSTALL_BIN}/(\S+)", path.read_text()):
        stand_in = bin_dir / program
        stand_in.write_text("#!/bin/sh\nexit 0\n")
        stand_in.chmod(0o755)
    copy = tmp_path / path.name
    copy.write_text(path.read_text().replace(INSTALL_BIN, str(bin_dir)))
    return copy


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["systemd-analyze", *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_both_hosts_have_a_unit():
    names = {p.name for p in UNITS}
    assert names == {"statsd-aggregator.service", "statsd-metrics-storage.service"}


@needs_systemd
@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_systemd_analyze_verify_accepts_the_unit(path, tmp_path):
    # verify exits 0 on a misspelt key or value ("ignoring"), so any output is a failure too.
    result = analyze("verify", str(installed_copy(path, tmp_path)))
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


@needs_systemd
def test_verify_as_run_here_refuses_a_misspelt_setting(tmp_path):
    """The check above has teeth: a wrong value is reported, not silently ignored."""
    good = installed_copy(DEPLOY / "systemd" / "statsd-aggregator.service", tmp_path)
    bad = tmp_path / "misspelt.service"
    bad.write_text(good.read_text().replace("ProtectSystem=strict", "ProtectSystem=strcit"))
    result = analyze("verify", str(bad))
    assert "ignoring: strcit" in result.stdout + result.stderr


@needs_systemd
@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_hardening_keeps_exposure_low(path, tmp_path):
    # systemd's own score, 0 (locked down) to 10 (unprotected); a stock unit scores 9.6.
    copy = installed_copy(path, tmp_path)
    result = analyze("security", "--offline=yes", "--threshold=20", str(copy))
    score = float(re.findall(r"Overall exposure level for \S+: ([\d.]+)", result.stdout)[0])
    assert score <= 2.0, result.stdout


@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_daemons_run_as_the_dedicated_user_and_only_the_main_process_gets_sigterm(path):
    service = unit(path)["Service"]
    assert service["User"] == "statsd-metrics"
    # The sysusers.d file creates that user; the unit only names it.
    sysusers = (DEPLOY / "systemd" / "statsd-metrics.sysusers.conf").read_text()
    assert re.search(r"^u statsd-metrics ", sysusers, re.M)
    # The main process stops its children in the order that saves the last data.
    assert service["KillMode"] == "mixed"
    env_file = service["EnvironmentFile"].lstrip("-")
    assert (DEPLOY / "systemd" / f"{Path(env_file).name}.env").is_file()


def exec_start(path: Path, environment: dict[str, str]) -> list[str]:
    """ExecStart as systemd runs it: `$NAME` becomes the variable's words (split at spaces)."""
    words = []
    for word in shlex.split(unit(path)["Service"]["ExecStart"]):
        name = word[1:] if word.startswith("$") else None
        words += shlex.split(environment.get(name, "")) if name else [word]
    return words


def env_file(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {k.strip(): shlex.split(v)[0] for k, v in pairs if not k.lstrip().startswith("#")}


@pytest.mark.slow
def test_stop_within_timeoutstopsec_when_carbon_hangs_and_the_last_flush_is_spooled(tmp_path):
    """The worst stop: Carbon accepts and never reads. The daemon, with its default flush
    interval, receivers and Carbon timeout, run with the unit's command line and signalled as
    KillMode=mixed does (SIGTERM to the main process alone), spools its final flush and exits
    0 well inside TimeoutStopSec, so systemd never SIGKILLs it and loses that flush."""
    path = DEPLOY / "systemd" / "statsd-aggregator.service"
    timeout_stop = float(unit(path)["Service"]["TimeoutStopSec"])
    environment = env_file(DEPLOY / "systemd" / "statsd-aggregator.env")
    carbon = StalledCarbon()
    port, mgmt_port = free_port(), free_port()
    config = tmp_path / "aggregator.toml"
    config.write_text(
        f"port = {port}\nmgmt_port = {mgmt_port}\ngraphite_port = {carbon.port}\n"
        f'spool_dir = "{tmp_path / "spool"}"\n'
    )
    environment["STATSD_AGGREGATOR_OPTS"] = environment["STATSD_AGGREGATOR_OPTS"].replace(
        "/etc/statsd-metrics/aggregator.toml", str(config)
    )
    argv = exec_start(path, environment)
    assert argv[0] == f"{INSTALL_BIN}/statsd-aggregator"
    log = tmp_path / "daemon.log"
    with log.open("wb") as out:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "aggregator", *argv[1:]], cwd=ROOT, stdout=out, stderr=out
        )
    try:
        wait_until(lambda: b"listening" in log.read_bytes(), what="the daemon to listen")
        # Far more than the stalled Carbon's buffers take: the delivery has to time out.
        names = 3000
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            for first in range(0, names, 50):  # 50 lines a datagram: no kernel drop
                lines = (f"unit.stop.c{i}:1|c" for i in range(first, first + 50))
                udp.sendto("\n".join(lines).encode(), ("127.0.0.1", port))
        time.sleep(0.5)  # the receivers read them; what they have not is drained at SIGTERM
        started = time.monotonic()
        os.kill(daemon.pid, signal.SIGTERM)
        status = daemon.wait(timeout_stop)
        took = time.monotonic() - started
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
        carbon.die()
    assert status == 0, log.read_text()
    spooled = "".join(p.read_text() for p in (tmp_path / "spool").glob("*.txt"))
    counted = set(re.findall(r"^stats_counts\.unit\.stop\.(c\d+) 1 ", spooled, re.M))
    assert len(counted) == names, log.read_text()
    print(f"stop with Carbon hung took {took:.1f} s of TimeoutStopSec={timeout_stop:g}")
    assert took < timeout_stop / 2


@pytest.mark.slow
def test_the_storage_units_command_line_runs_and_stops_within_timeoutstopsec(start_up, tmp_path):
    """`up` with the options of the storage unit's environment file (its data directory moved
    under tmp_path, free ports added) starts, and SIGTERM to `up` alone, as KillMode=mixed
    sends it, stops every part well inside TimeoutStopSec, exit status 0."""
    path = DEPLOY / "systemd" / "statsd-metrics-storage.service"
    timeout_stop = float(unit(path)["Service"]["TimeoutStopSec"])
    environment = env_file(DEPLOY / "systemd" / "statsd-metrics-storage.env")
    argv = exec_start(path, environment)
    assert argv[:2] == [f"{INSTALL_BIN}/statsd-metrics", "up"]
    data_dir = tmp_path / "var"
    options = [str(data_dir) if arg == "/var/lib/statsd-metrics" else arg for arg in argv[2:]]
    assert str(data_dir) in options
    up = start_up(*options, data_dir=data_dir).wait_ready()
    assert "statsd" not in up.addresses  # a storage host runs no aggregator
    up.send_plaintext([f"unit.storage.points 1 {int(time.time())}"])
    started = time.monotonic()
    status = up.stop(timeout=timeout_stop)
    took = time.monotonic() - started
    print(f"storage stop took {took:.1f} s of TimeoutStopSec={timeout_stop:g}")
    assert status == 0, up.stderr()
    assert took < timeout_stop / 2


@pytest.mark.slow
def test_the_units_umask_lets_the_group_and_no_one_else_write_to_the_unix_socket(tmp_path):
    """Applications send to a Unix socket as members of the group statsd-metrics: the socket
    the daemon creates under the unit's UMask= is group-writable and closed to others."""
    service = unit(DEPLOY / "systemd" / "statsd-aggregator.service")["Service"]
    socket_path = tmp_path / "statsd.sock"
    config = tmp_path / "aggregator.toml"
    config.write_text(
        f'port = {free_port(socket.SOCK_DGRAM)}\nmgmt_port = {free_port()}\ngraphite_host = ""\n'
        f'unix_socket = "{socket_path}"\nspool_dir = "{tmp_path / "spool"}"\n'
    )
    log = tmp_path / "daemon.log"
    with log.open("wb") as out:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "aggregator", "--config", str(config)],
            cwd=ROOT, stdout=out, stderr=out, umask=int(service["UMask"], 8),
        )  # fmt: skip
    try:
        wait_until(socket_path.exists, what=f"the Unix socket: {log}")
        mode = socket_path.stat().st_mode & 0o777
    finally:
        daemon.terminate()
        daemon.wait(30)
    assert mode & 0o060 == 0o060  # the group reads and writes
    assert mode & 0o007 == 0  # others nothing
