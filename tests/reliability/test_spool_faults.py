"""Carbon is down and the spool cannot take the flushes: a counted drop, never a crash.

Four ways the spool fails, each made without root tricks (the tests run as root, which ignores
file modes): its byte limit; a directory that cannot exist (its path runs through a file); a
full disk (RLIMIT_FSIZE makes writes past 32 KiB fail with EFBIG, through the same path as
ENOSPC); and the directory vanishing under a running daemon, flushes already in it.
"""

from __future__ import annotations

import resource
import shutil

import pytest

from support.net import free_port

from .conftest import Sink, stored, wait_until

pytestmark = pytest.mark.slow

WIDE = b"\n".join(b"wide.%d:1|c" % i for i in range(1500))  # every flush: 3,000+ lines, 90 KB


def stats(daemon) -> dict[str, int]:
    """The numeric lines of the management `stats` command."""
    pairs = (line.partition(": ") for line in daemon.mgmt("stats").splitlines())
    return {key: int(value) for key, _, value in pairs if value.isdigit()}


def small_files() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (32768, 32768))


@pytest.mark.parametrize("fault", ["spool_max_bytes", "no_directory", "disk_full", "vanished"])
def test_a_spool_that_cannot_take_a_flush_counts_the_drop_and_the_daemon_goes_on(
    fault, start_daemon, tmp_path
):
    carbon_port = free_port()  # Carbon is down
    config: dict = {"log_level": "info", "graphite_timeout": 1.0}
    popen = {}
    if fault == "spool_max_bytes":
        config["spool_max_bytes"] = 200_000  # two flushes
    elif fault == "no_directory":
        (tmp_path / "a-file").write_text("")
        config["spool_dir"] = str(tmp_path / "a-file" / "spool")
    elif fault == "disk_full":
        popen["preexec_fn"] = small_files
    d = start_daemon(config, flush=0.3, graphite_port=carbon_port, **popen)
    d.send(WIDE)
    spool = tmp_path / "spool0"
    if fault == "vanished":
        wait_until(lambda: stats(d)["spool.flushes"] >= 2, what="two flushes spooled")
        shutil.rmtree(spool)
        spool.write_text("")  # writes and reads under it now fail with ENOTDIR
    wait_until(lambda: stats(d)["spool.dropped_flushes"] >= 3, what="three drops counted")
    assert d.http()[0] == 200
    # Carbon comes back: the daemon delivers again (what the spool kept, then new flushes).
    carbon = Sink(carbon_port)
    try:
        d.send(b"after:1|c")
        wait_until(lambda: stored(carbon.lines, "stats_counts.after"), timeout=20, what="new")
    finally:
        carbon.close()
    counted = stats(d)
    assert counted["spool.dropped_lines"] >= 3000 * counted["spool.dropped_flushes"]
    if fault == "spool_max_bytes":
        assert counted["spool.bytes"] <= 200_000
    assert "spool: dropped the flush of ts" in d.log()
    assert d.process.poll() is None
    assert "Traceback" not in d.log()
