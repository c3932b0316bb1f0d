"""statsd 4.0.1's own test suite, run against our client (scripts/statsd_suite.py): exactly the
failures docs/migration.md lists, each on purpose, and no other."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# docs/migration.md, "statsd's own test suite, run against our client"
FAILING_ON_PURPOSE = {
    # timing format: `%0.6f` expected
    "test_timing_udp", "test_timing_tcp", "test_timing_unix_socket",
    "test_timing_supports_timedelta", "test_pipeline_udp", "test_pipeline_tcp",
    "test_big_numbers_udp", "test_big_numbers_tcp",
    # RuntimeError / socket errors expected: we never raise
    "test_timer_object_no_send_twice_udp", "test_timer_object_no_send_twice_tcp",
    "test_timer_send_without_stop_udp", "test_timer_send_without_stop_tcp",
    "test_timer_object_stop_without_start_udp", "test_timer_object_stop_without_start_tcp",
    "test_tcp_raises_exception_to_user",
    # private internals
    "test_prepare_udp", "test_prepare_tcp", "test_pipeline_empty_udp", "test_pipeline_empty_tcp",
    # default payload size 1432, not 512
    "test_pipeline_packet_size",
    # a mocked socket.socket accepts the datagram attempt
    "test_unix_socket_timeout",
}  # fmt: skip


@pytest.mark.slow
def test_the_statsd_packages_own_suite_fails_only_where_we_differ_on_purpose():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "statsd_suite.py"), "-rA"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    outcomes = {
        name: outcome
        for outcome, name in re.findall(
            r"^(PASSED|FAILED|SKIPPED|ERROR)\S* test_statsd_suite\.py::(\w+)", result.stdout, re.M
        )
    }
    failed = {name for name, outcome in outcomes.items() if outcome in ("FAILED", "ERROR")}
    passed = {name for name, outcome in outcomes.items() if outcome == "PASSED"}
    assert failed == FAILING_ON_PURPOSE, result.stdout[-3000:]
    assert len(passed) == 63
