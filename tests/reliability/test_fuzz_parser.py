"""A short run of the coverage-guided fuzzer (reliability/fuzz_parser.py): the long runs are
by hand, with their figures in docs/reliability.md."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris")  # its wheels are for x86_64 Linux (setup.cfg)

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).resolve().parents[2] / "reliability" / "fuzz_parser.py"


def test_a_short_coverage_guided_fuzz_of_parser_and_flush_finds_nothing(tmp_path):
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "-max_total_time=15", "-print_final_stats=1",
         f"-artifact_prefix={tmp_path}/", str(tmp_path / "corpus")],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert not list(tmp_path.glob("crash-*"))
    runs = int(re.search(r"stat::number_of_executed_units: (\d+)", done.stderr)[1])
    assert runs > 1000
