"""Which interpreter runs carbon-cache and the render API, and what `up` says when none can."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from statsd_metrics.supervisor import carbon_python
from statsd_metrics.supervisor.carbon_python import CarbonPythonError, Probe, find, probe

PYENV = Path.home() / ".pyenv" / "versions"
PYTHON_312 = next(iter(sorted(PYENV.glob("3.12*/bin/python3.12"))), None)


def test_this_interpreter_is_used_when_it_runs_carbon(tmp_path: Path, monkeypatch):
    monkeypatch.delenv(carbon_python.ENV, raising=False)
    found = find(None, tmp_path / "python")
    assert found.executable == sys.executable
    assert found.version == sys.version.split()[0]
    assert found.env == {}  # same interpreter: no path of its own
    assert sys.executable in found.describe()


def test_a_given_interpreter_that_cannot_is_refused_with_what_it_lacks(tmp_path: Path):
    with pytest.raises(CarbonPythonError, match="--carbon-python /nonexistent/python: cannot run"):
        find("/nonexistent/python", tmp_path)


@pytest.mark.skipif(PYTHON_312 is None, reason="no Python 3.12 under ~/.pyenv")
def test_python_312_is_probed_for_what_it_cannot_import(tmp_path: Path):
    found = probe(str(PYTHON_312))
    assert found.version.startswith("3.12")
    assert not found.usable
    assert "carbon" in found.why_not()
    with pytest.raises(CarbonPythonError, match=r"\(Python 3\.12\.\d+\) cannot import carbon"):
        find(str(PYTHON_312), tmp_path)


@pytest.mark.skipif(PYTHON_312 is None, reason="no Python 3.12 under ~/.pyenv")
def test_on_python_312_without_a_311_up_says_how_to_get_one(tmp_path: Path):
    """`up` itself under 3.12 (the client and aggregator run there), no python3.11 on PATH."""
    env = {**os.environ, "PATH": str(PYTHON_312.parent), "PYTHONPATH": str(Path.cwd())}
    env.pop(carbon_python.ENV, None)
    done = subprocess.run(
        [str(PYTHON_312), "-m", "statsd_metrics", "up", "--data-dir", str(tmp_path / "var")],
        check=False, capture_output=True, text=True, timeout=60, cwd=Path.cwd(), env=env,
    )  # fmt: skip
    assert done.returncode == 1
    assert "runs on Python 3.11 only, and this is Python 3.12" in done.stderr
    assert 'pip install "statsd-metrics[graphite]"' in done.stderr
    assert "--carbon-python" in done.stderr
    assert "Traceback" not in done.stderr


def test_another_interpreter_runs_this_copy_of_the_package(tmp_path: Path):
    other = Probe("/opt/py311/bin/python", version="3.11.9")
    found = carbon_python._other(other, tmp_path / "python")
    link = tmp_path / "python" / "statsd_metrics"
    assert found.env == {"PYTHONPATH": str(tmp_path / "python")}
    assert link.is_symlink()
    assert link.resolve() == Path(carbon_python.__file__).resolve().parents[1]
    # Idempotent: a second `up` on the same data directory keeps the link.
    assert carbon_python._other(other, tmp_path / "python") == found
