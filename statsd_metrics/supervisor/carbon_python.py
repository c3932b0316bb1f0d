"""The Python interpreter that runs carbon-cache and the render API.

carbon 1.1.10, the last release on PyPI, neither builds (`ConfigParser.readfp` in its setup.py)
nor imports (`import imp` in carbon/routers.py) on Python 3.12 and later, and the render API
reads carbon's hash ring (statsd_metrics/graphite/whisper_finder.py). The aggregator and the
client run on any supported Python. So `up` runs the storage side under an interpreter that can
run it and says which: the one given (`--carbon-python`, or STATSD_METRICS_CARBON_PYTHON), else
this one if it can, else a `python3.11` on PATH that can. Nothing of carbon is patched.

Another interpreter runs this same copy of statsd_metrics (the carbon-cache wrapper, the finder
and the preview are ours), through a directory on its PYTHONPATH that holds only a link to it:
not this interpreter's site-packages, whose compiled modules are built for another version.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ENV = "STATSD_METRICS_CARBON_PYTHON"
CANDIDATE = "python3.11"
# What carbon-cache and the render API (with the dashboards preview) import; carbon.routers is
# the module that fails on 3.12.
MODULES = (
    "carbon.routers", "carbon.hashing", "whisper", "twisted", "graphite_render", "gunicorn",
    "grafana_foundation_sdk", "yaml",
)  # fmt: skip
PROBE = """
import importlib, sys
print(sys.version.split()[0])
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except Exception as exc:
        print(name, type(exc).__name__, exc)
"""
PROBE_TIMEOUT = 60.0
PACKAGE = Path(__file__).resolve().parents[1]  # this copy of statsd_metrics
INSTALL = 'pip install "statsd-metrics[graphite]"'


class CarbonPythonError(RuntimeError):
    """No interpreter that can run carbon; the message says how to get one."""


@dataclass(frozen=True)
class CarbonPython:
    executable: str
    version: str
    env: dict[str, str] = field(default_factory=dict)
    """Set for the storage side's processes (PYTHONPATH when it is another interpreter)."""

    def describe(self) -> str:
        return f"{self.executable} (Python {self.version})"


@dataclass(frozen=True)
class Probe:
    executable: str
    version: str = ""
    missing: tuple[str, ...] = ()
    error: str = ""

    @property
    def usable(self) -> bool:
        return not self.error and not self.missing

    def why_not(self) -> str:
        if self.error:
            return f"{self.executable}: {self.error}"
        names = ", ".join(dict.fromkeys(m.split(".")[0].split(" ")[0] for m in self.missing))
        return f"{self.executable} (Python {self.version}) cannot import {names}"


def probe(executable: str, *, own_path: bool = True) -> Probe:
    """Ask an interpreter, in a child process (importing carbon and twisted has side effects
    `up` does not want), for its version and which modules it cannot import. `own_path`: its
    own packages only, not the PYTHONPATH of this process (which is for this interpreter)."""
    try:
        result = subprocess.run(
            [executable, "-c", PROBE, *MODULES],
            check=False,
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT,
            stdin=subprocess.DEVNULL,
            env={k: v for k, v in os.environ.items() if not (own_path and k == "PYTHONPATH")},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Probe(executable, error=f"cannot run it ({exc})")
    lines = result.stdout.splitlines()
    if result.returncode != 0 or not lines:
        return Probe(executable, error=f"cannot run it (exit status {result.returncode})")
    return Probe(executable, version=lines[0], missing=tuple(lines[1:]))


def find(given: str | None, link_dir: Path) -> CarbonPython:
    """The interpreter for the storage side; `link_dir` is where another interpreter finds
    this statsd_metrics. Raises CarbonPythonError with what was tried and what to do."""
    given = given or os.environ.get(ENV) or None
    if given is not None:
        found = probe(shutil.which(given) or given)
        if not found.usable:
            raise CarbonPythonError(
                f"--carbon-python {found.why_not()}; it needs carbon 1.1.10 on Python 3.11 "
                f"({INSTALL} in that Python's environment)"
            )
        return _other(found, link_dir)
    tried = [probe(sys.executable, own_path=False)]
    if tried[0].usable:
        return CarbonPython(sys.executable, tried[0].version)
    candidate = shutil.which(CANDIDATE)
    if candidate and Path(candidate).resolve() != Path(sys.executable).resolve():
        tried.append(probe(candidate))
        if tried[-1].usable:
            return _other(tried[-1], link_dir)
    raise CarbonPythonError(_advice(tried))


def _other(found: Probe, link_dir: Path) -> CarbonPython:
    if Path(found.executable).resolve() == Path(sys.executable).resolve():
        return CarbonPython(sys.executable, found.version)
    link_dir.mkdir(parents=True, exist_ok=True)
    link = link_dir / PACKAGE.name
    if not (link.is_symlink() and link.resolve() == PACKAGE):
        link.unlink(missing_ok=True)
        link.symlink_to(PACKAGE, target_is_directory=True)
    return CarbonPython(found.executable, found.version, env={"PYTHONPATH": str(link_dir)})


def _advice(tried: list[Probe]) -> str:
    seen = "; ".join(p.why_not() for p in tried)
    if sys.version_info < (3, 12):
        return f"carbon-cache and the render API: {tried[0].why_not()}: {INSTALL}"
    venv = "~/.local/share/statsd-metrics/carbon"
    return (
        f"carbon-cache and the render API need carbon 1.1.10, which runs on Python 3.11 only, "
        f"and this is Python {sys.version.split()[0]} ({seen}). Give `up` a Python 3.11 that "
        f"has it:\n"
        f"    python3.11 -m venv {venv}\n"
        f'    {venv}/bin/pip install "statsd-metrics[graphite]"\n'
        f"    statsd-metrics up --carbon-python {venv}/bin/python\n"
        f"(or put that python3.11 first on PATH; docs/graphite.md, 'Python versions')"
    )
