"""Graphite run by `statsd-metrics up`: the configuration filled in for a run (`config`),
carbon-cache with a drain of its cache at shutdown (`carbon_cache`), and the render API's
Whisper finder with carbon's hash ring (`whisper_finder`).

`conf/` is the repository's graphite/ directory: a symlink in the checkout, so that graphite/
stays the one place the configuration is edited, and real files in the wheel (the build copies
what the link points to). It is read through importlib.resources, never relative to a source
file, so an installed wheel finds it as the checkout does.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def _conf_dir() -> Path:
    root = resources.files(__name__) / "conf"
    # Installed as files (wheels are unpacked, the checkout is a directory): a real path, which
    # carbon, gunicorn and copytree need. Resolved, so messages name graphite/... in a checkout.
    if not isinstance(root, Path):
        raise RuntimeError(f"{__name__} must be installed as files, not imported from {root}")
    return root.resolve()


CONF_DIR = _conf_dir()
"""graphite/: Carbon, Whisper, render-API and Grafana provisioning files, dashboards, rules."""
