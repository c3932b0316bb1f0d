"""Render the templates in graphite/ into a pipeline's data directory.

The files in graphite/ are the configuration, with dollar-brace fields for what differs per
run (ports, paths, the flush interval); this module fills them in and nothing else, so a
reviewer reads the real settings there, not here.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import tomllib
from importlib import resources
from pathlib import Path

from ..supervisor.layout import HOST, Layout
from . import CONF_DIR

GRAPHITE_DIR = CONF_DIR
FIELD = re.compile(r"\$\{(\w+)\}")
CARBON_FILES = ("carbon.conf", "storage-schemas.conf", "storage-aggregation.conf")
AGGREGATOR_FILE = "aggregator.toml"
EDITABLE = ("*.conf", "*.yaml", "grafana/**/*.json", "grafana/**/*.yaml")


class ConfigError(ValueError):
    """A template that cannot be rendered; the message names the file."""


def statsd_retentions(flush_interval: int) -> str:
    """F:6h, 1m:7d, 10m:1y, skipping archives no coarser than F (see storage-schemas.conf)."""
    archives = [f"{flush_interval}s:6h"]
    archives += [a for p, a in ((60, "1m:7d"), (600, "10m:1y")) if p > flush_interval]
    return ",".join(archives)


def aggregator_settings(user_config: Path | None = None) -> dict[str, object]:
    """The user's aggregator settings (TOML or JSON), with tags folded into paths.

    The render API has no tag support: a series written as `name;k=v` would be stored under
    Whisper's _tagged/ tree, where no query reaches it. The host tag is the host name unless
    the settings say otherwise (`host_tag = ""` turns it off).
    """
    settings: dict[str, object] = {}
    if user_config is not None:
        try:
            text = user_config.read_text()
            settings = json.loads(text) if user_config.suffix == ".json" else tomllib.loads(text)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"aggregator config {user_config}: {exc}") from None
    if settings.get("tag_mode", "path") != "path":
        raise ConfigError(
            f"aggregator config {user_config}: tag_mode = {settings['tag_mode']!r}: the render "
            'API cannot query Graphite tags, so `up` needs tag_mode = "path" (docs/graphite.md)'
        )
    return {**settings, "tag_mode": "path"}


def host_tag(setting: str, index: int, aggregators: int) -> str:
    """The aggregator's host tag: the host name unless set ("auto"), so that the aggregators of
    several hosts write different series (docs/metrics.md, "Tags, hosts and wildcards"). Several
    aggregators on this machine are numbered as well: with one tag for all, they would write the
    same paths and overwrite each other's points in Whisper."""
    if aggregators == 1:
        return setting
    name = socket.gethostname() or "localhost" if setting in ("auto", "") else setting
    return f"{name}-{index}"


def render(
    layout: Layout, templates: Path = GRAPHITE_DIR, aggregator_config: Path | None = None
) -> None:
    """Write every configuration file the layout's processes read."""
    settings = aggregator_settings(aggregator_config) if layout.aggregators else {}
    for agg in layout.aggregators:
        own = {**settings, "spool_dir": str(layout.spool_dir(agg))}
        own["host_tag"] = host_tag(
            str(settings.get("host_tag", "auto")), agg.index, len(layout.aggregators)
        )
        _write(layout.aggregator_conf(agg), json.dumps(own, indent=2) + "\n")
    for cache in layout.caches:
        conf = layout.carbon_conf(cache)
        fields = {
            "storage_dir": layout.storage_dir(cache),
            "whisper_dir": layout.whisper_dir(cache),
            "line_port": cache.line_port,
            "pickle_port": cache.pickle_port,
            "carbonlink_port": cache.carbonlink_port,
            "statsd_retentions": statsd_retentions(layout.flush_interval),
        }
        for name in CARBON_FILES:
            _write(conf.parent / name, _fill(templates / name, fields))
    _write(
        layout.render_conf,
        _fill(
            templates / "graphite-render.yaml",
            {
                "data_dir": layout.data_dir,
                # JSON lists are YAML flow sequences.
                "whisper_directories": json.dumps(
                    [str(layout.whisper_dir(c)) for c in layout.caches]
                ),
                "carbonlink_hosts": json.dumps(
                    [f"{HOST}:{c.carbonlink_port}:{c.instance}" for c in layout.caches]
                ),
            },
        ),
    )
    if layout.relay_port is not None:
        members = "\n".join(f"        {HOST}:{c.line_port}={c.instance}" for c in layout.caches)
        _write(
            layout.relay_conf,
            _fill(
                templates / "carbon-c-relay.conf",
                {"members": members, "relay_port": layout.relay_port},
            ),
        )


def _fill(template: Path, fields: dict[str, object]) -> str:
    """Replace each dollar-brace field; any other dollar sign (regex anchors) stays."""

    def value(match: re.Match[str]) -> str:
        if match.group(1) not in fields:
            raise ConfigError(f"{template}: unknown field {match.group(0)}")
        return str(fields[match.group(1)])

    try:
        return FIELD.sub(value, template.read_text())
    except OSError as exc:
        raise ConfigError(f"configuration template {template}: {exc.strerror}") from None


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def write_editable_copy(target: Path, templates: Path = GRAPHITE_DIR) -> list[Path]:
    """`statsd-metrics init`: the templates, Grafana's provisioning and the aggregator's
    settings (every key commented) copied into `target`, for `up --config-dir` to run from.
    Refuses, writing nothing, if any of them exists: an edited file is never overwritten."""
    sources = {
        path.relative_to(templates): path
        for pattern in EDITABLE
        for path in sorted(templates.glob(pattern))
    }
    aggregator = resources.files("aggregator") / AGGREGATOR_FILE
    targets = [target / name for name in sources] + [target / AGGREGATOR_FILE]
    existing = [str(path) for path in targets if path.exists() or path.is_symlink()]
    if existing:
        raise ConfigError(
            f"{existing[0]} exists{f' (and {len(existing) - 1} more)' if existing[1:] else ''}"
            "; nothing was written: remove them or choose another directory"
        )
    try:
        for name, source in sources.items():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target / name)
        (target / AGGREGATOR_FILE).write_text(aggregator.read_text())
    except OSError as exc:
        raise ConfigError(f"{target}: cannot write it ({exc.strerror})") from None
    return targets
