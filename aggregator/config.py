"""Configuration: every key, its default, and validation that names the offending key.

Keys are the reference daemon's options in snake_case plus our own (listeners, spool, limits).
A bad file must stop the daemon at start with a message an operator can act on, so every
check says which key is wrong and why.
"""

from __future__ import annotations

import ipaddress
import json
import math
import tempfile
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A configuration problem, worded for the operator."""


@dataclass(frozen=True)
class HistogramRule:
    metric: str
    bins: tuple[float | str, ...]  # ascending numbers, possibly "inf"


@dataclass(frozen=True)
class Config:
    # listeners
    bind: str = "127.0.0.1"
    port: int = 8125
    bind_ipv6: str = ""  # also listen for UDP on this IPv6 address (same port); "" = off
    tcp_port: int = 0  # TCP line streams on `bind`; 0 = off
    unix_socket: str = ""  # Unix datagram socket path; "" = off
    receive_buffer: int = 8 * 1024 * 1024  # SO_RCVBUF requested per UDP socket
    receivers: int = 2  # receiving processes sharing the UDP port (SO_REUSEPORT)
    # self-protection
    max_datagram_size: int = 65535
    max_line_length: int = 8192
    max_metric_names: int = 500_000
    # daily distinct members of chosen sets (aggregator/daily.py)
    daily_sets: tuple[str, ...] = ("*users.active",)  # glob patterns on set names; () = off
    daily_max_members: int = 1_000_000  # members held for today, over every daily set
    # output
    graphite_host: str = "127.0.0.1"  # "" = compute but send nothing (reference: unset host)
    graphite_port: int = 2003
    graphite_timeout: float = 5.0
    flush_interval: float = 10.0  # seconds
    spool_dir: str = ""  # "" = <tmp>/statsd-aggregator-spool-<port>
    spool_max_bytes: int = 100 * 1024 * 1024
    spool_max_age: float = 86400.0  # seconds
    # management
    mgmt_bind: str = "127.0.0.1"
    mgmt_port: int = 8126
    mgmt_token: str = ""  # required by the commands when set; needed off loopback
    health_status: str = "up"
    log_level: str = "info"
    # the reference's options
    tag_mode: str = "graphite"
    legacy_namespace: bool = True
    global_prefix: str = "stats"
    prefix_counter: str = "counters"
    prefix_timer: str = "timers"
    prefix_gauge: str = "gauges"
    prefix_set: str = "sets"
    global_suffix: str = ""
    host_tag: str = ""  # tag every series host=<this>: "" = off, "auto" = the host name
    prefix_stats: str = "statsd"
    percent_thresholds: tuple[float, ...] = (90,)
    histogram: tuple[HistogramRule, ...] = ()
    delete_idle_stats: bool = False
    delete_counters: bool | None = None  # None = follow delete_idle_stats
    delete_timers: bool | None = None
    delete_gauges: bool | None = None
    delete_sets: bool | None = None
    gauges_max_ttl: int = 1
    flush_counts: bool = True
    key_name_sanitize: bool = True
    calculated_timer_metrics: tuple[str, ...] = ()
    source: str = field(default="", compare=False)  # the file this came from, for reloads

    def deletes(self, kind: str) -> bool:
        """Whether idle stats of `kind` (counters, timers, gauges, sets) are removed."""
        explicit = getattr(self, f"delete_{kind}")
        return self.delete_idle_stats if explicit is None else explicit

    @property
    def spool_path(self) -> Path:
        if self.spool_dir:
            return Path(self.spool_dir)
        return Path(tempfile.gettempdir()) / f"statsd-aggregator-spool-{self.port}"


KEYS = {f.name for f in fields(Config)} - {"source"}
_PORT_KEYS = ("port", "graphite_port", "mgmt_port")
MIN_TOKEN_LENGTH = 16


def is_loopback(host: str) -> bool:
    """Whether `host` is only reachable from this machine (IP literals and `localhost`; any
    other name may resolve anywhere, so it counts as reachable from elsewhere)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _fail(key: str, why: str) -> ConfigError:
    return ConfigError(f"config key {key!r}: {why}")


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _check_type(key: str, value: Any, default: Any) -> Any:
    if key in ("delete_counters", "delete_timers", "delete_gauges", "delete_sets"):
        default = False
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise _fail(key, f"expected true or false, got {value!r}")
    elif isinstance(default, int):
        if not isinstance(value, int) or isinstance(value, bool):
            raise _fail(key, f"expected an integer, got {value!r}")
    elif isinstance(default, float):
        if not _is_number(value):
            raise _fail(key, f"expected a number, got {value!r}")
        value = float(value)
    elif isinstance(default, str) and not isinstance(value, str):
        raise _fail(key, f"expected a string, got {value!r}")
    return value


def _thresholds(value: Any) -> tuple[float, ...]:
    items = value if isinstance(value, list | tuple) else [value]
    for p in items:
        if not _is_number(p) or p == 0 or not -100 <= p <= 100:
            raise _fail("percent_thresholds", f"{p!r} is not a number in [-100, 100] other than 0")
    return tuple(items)


def _histogram(value: Any) -> tuple[HistogramRule, ...]:
    if not isinstance(value, list | tuple):
        raise _fail("histogram", "expected a list of {metric, bins} tables")
    rules = []
    for i, rule in enumerate(value):
        if isinstance(rule, HistogramRule):
            rules.append(rule)
            continue
        if not isinstance(rule, dict) or set(rule) != {"metric", "bins"}:
            raise _fail("histogram", f"entry {i} must have exactly the keys 'metric' and 'bins'")
        if not isinstance(rule["metric"], str) or not isinstance(rule["bins"], list):
            raise _fail("histogram", f"entry {i}: 'metric' must be a string, 'bins' a list")
        finite = [b for b in rule["bins"] if b != "inf"]
        if not all(_is_number(b) for b in finite) or finite != sorted(finite):
            raise _fail("histogram", f'entry {i}: bins must be ascending numbers or "inf"')
        rules.append(HistogramRule(rule["metric"], tuple(rule["bins"])))
    return tuple(rules)


def _check_value(key: str, value: Any) -> Any:
    """Domain checks beyond the type; returns the normalised value."""
    if key in _PORT_KEYS and not 0 < value < 65536:
        raise _fail(key, f"port {value} must be between 1 and 65535")
    if key == "tcp_port" and not 0 <= value < 65536:
        raise _fail(key, f"port {value} must be between 1 and 65535 (0 = off)")
    if key in ("receive_buffer", "max_datagram_size", "max_line_length", "max_metric_names",
               "daily_max_members", "spool_max_bytes", "receivers") and value < 1:  # fmt: skip
        raise _fail(key, f"must be at least 1, got {value}")
    if key in ("flush_interval", "graphite_timeout", "spool_max_age") and value <= 0:
        raise _fail(key, f"must be greater than 0, got {value}")
    if key == "gauges_max_ttl" and value < 1:
        raise _fail(key, f"must be an integer >= 1, got {value}")
    if key == "tag_mode" and value not in ("graphite", "path"):
        raise _fail(key, f'must be "graphite" or "path", got {value!r}')
    if key == "health_status" and value not in ("up", "down"):
        raise _fail(key, f'must be "up" or "down", got {value!r}')
    if key == "mgmt_token" and value and (len(value) < MIN_TOKEN_LENGTH or not value.isprintable()
                                          or " " in value):  # fmt: skip
        raise _fail(key, f"must be at least {MIN_TOKEN_LENGTH} printable characters, no space")
    if key == "log_level" and value not in ("debug", "info", "warning", "error"):
        raise _fail(key, f"must be debug, info, warning or error, got {value!r}")
    if key == "percent_thresholds":
        return _thresholds(value)
    if key == "histogram":
        return _histogram(value)
    if key == "calculated_timer_metrics":
        if not isinstance(value, list | tuple) or not all(isinstance(m, str) for m in value):
            raise _fail(key, "expected a list of field names")
        return tuple(value)
    if key == "daily_sets":
        if not isinstance(value, list | tuple) or not all(isinstance(p, str) and p for p in value):
            raise _fail(key, 'expected a list of glob patterns of set names: ["*users.active"]')
        return tuple(value)
    return value


def from_mapping(values: dict[str, Any], base: Config | None = None) -> Config:
    """Validate `values` (file contents or flags) on top of `base` (default: the defaults)."""
    base = base or Config()
    unknown = sorted(set(values) - KEYS)
    if unknown:
        raise _fail(unknown[0], "unknown key")
    checked = {}
    defaults = Config()
    for key, raw in values.items():
        value = raw
        if key not in ("percent_thresholds", "histogram", "calculated_timer_metrics", "daily_sets"):
            value = _check_type(key, raw, getattr(defaults, key))
        checked[key] = _check_value(key, value)
    config = replace(base, **checked)
    if not config.mgmt_token and not is_loopback(config.mgmt_bind):
        raise _fail(
            "mgmt_token",
            f"required when mgmt_bind ({config.mgmt_bind}) is not a loopback address: whoever "
            "reaches the management port could read every metric name and delete metrics",
        )
    return config


def load(path: str | Path | None, overrides: dict[str, Any] | None = None) -> Config:
    """Read a TOML (or .json) file, then apply command-line overrides (flags win)."""
    values: dict[str, Any] = {}
    source = ""
    if path:
        p = Path(path)
        source = str(p.resolve())
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read config file {p}: {exc.strerror}") from exc
        try:
            values = json.loads(text) if p.suffix == ".json" else tomllib.loads(text)
        except (ValueError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"config file {p} is not valid: {exc}") from exc
        if not isinstance(values, dict):
            raise ConfigError(f"config file {p} must hold a table of keys")
    merged = {**values, **(overrides or {})}
    return replace(from_mapping(merged), source=source)
