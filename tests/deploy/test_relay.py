"""deploy/carbon-c-relay.conf, the storage host's network entry: carbon-c-relay parses it and
routes every series to the carbon-cache on loopback (its test mode, `-t`, routes stdin)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

CONF = Path(__file__).resolve().parents[2] / "deploy" / "carbon-c-relay.conf"

pytestmark = pytest.mark.skipif(
    shutil.which("carbon-c-relay") is None,
    reason="carbon-c-relay not installed (Debian package carbon-c-relay: ./scripts/system-deps)",
)


def test_every_series_goes_to_the_local_carbon_cache():
    lines = "stats_counts.api.requests 3 1700000000\ncarbon.agents.x.cache.size 1 1700000000\n"
    result = subprocess.run(
        ["carbon-c-relay", "-t", "-f", str(CONF)],
        input=lines, capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    routed = re.findall(r"\* -> (\S+)\n\s+forward\(local\)\n\s+127\.0\.0\.1:2003\n", result.stdout)
    assert routed == ["stats_counts.api.requests", "carbon.agents.x.cache.size"]
    # it listens on the network, on the port the application hosts' aggregators send to
    assert re.search(r"listen\n\s+type linemode\n\s+0\.0\.0\.0:2013 proto tcp", result.stdout)
