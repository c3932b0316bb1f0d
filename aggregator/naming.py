"""Graphite paths: the reference's legacy and new namespaces, prefixes, suffix and tags.

A key is `name` or `name;tag;tag...` (tags as `k=v`, or bare). With tag_mode "graphite" the
tags follow the suffix as Graphite tags (`path.sfx;k=v`), as the reference writes them. With
tag_mode "path" they are folded into the name, so tag-unaware render APIs can query them:
`name;b=2;a=1` becomes the name `name.a.1.b.2` (tags sorted by key, each tag one `key.value`
pair of segments, `.` and `=` inside a key or value written as `_`, a bare tag one segment).
"""

from __future__ import annotations

import re

from .config import Config

_WHITESPACE = re.compile(r"\s+")
_DISALLOWED = re.compile(r"[^a-zA-Z_\-0-9.;=]")


def sanitize(key: str) -> str:
    """The reference's keyNameSanitize: whitespace runs -> `_`, `/` -> `-`, drop the rest.

    Parsing applies it at ingress; paths apply it again when keys were kept raw.
    """
    return _DISALLOWED.sub("", _WHITESPACE.sub("_", key).replace("/", "-"))


def fold_tags(tags: list[str]) -> str:
    """`["b=2", "a=1", "flag"]` -> `a.1.b.2.flag` (the path-mode tag segments)."""
    segments = []
    for tag in sorted(tags, key=lambda t: t.partition("=")[::2]):
        key, _, value = tag.partition("=")
        segments += [s.replace(".", "_").replace("=", "_") for s in (key, value) if s]
    return ".".join(segments)


class Namer:
    """Precomputes the namespace strings of one configuration."""

    def __init__(self, config: Config) -> None:
        self.path_tags = config.tag_mode == "path"
        self.raw_keys = not config.key_name_sanitize
        self.flush_counts = config.flush_counts
        s = f".{config.global_suffix}" if config.global_suffix else ""
        self.suffix = s
        ps = config.prefix_stats
        if config.legacy_namespace:
            self.counter_rate = ("stats.", s)
            self.counter_count = ("stats_counts.", s)
            self.timer = "stats.timers."
            self.gauge = ("stats.gauges.", s)
            self.set = ("stats.sets.", s)
            self.num_stats = f"{ps}.numStats{s}"
            stats_ns = f"stats.{ps}"
        else:
            g = [config.global_prefix] if config.global_prefix else []

            def ns(prefix: str) -> str:
                return "".join(f"{part}." for part in [*g, prefix] if part)

            self.counter_rate = (ns(config.prefix_counter), f".rate{s}")
            self.counter_count = (ns(config.prefix_counter), f".count{s}")
            self.timer = ns(config.prefix_timer)
            self.gauge = (ns(config.prefix_gauge), s)
            self.set = (ns(config.prefix_set), s)
            stats_ns = ".".join([*g, ps])
            self.num_stats = f"{stats_ns}.numStats{s}"
        self.calculation_time = f"{stats_ns}.graphiteStats.calculationtime{s}"
        self.processing_time = f"{stats_ns}.processing_time{s}"
        self.graphite_stats = f"{stats_ns}.graphiteStats."

    def split(self, key: str) -> tuple[str, str]:
        """(name, tag part to append after the suffix) for this configuration."""
        name, sep, tags = key.partition(";")
        if self.raw_keys:  # keys were kept raw at ingress; the output must still be a path
            name, tags = sanitize(name), sanitize(tags)
        if not sep:
            return name, ""
        if self.path_tags:
            folded = fold_tags([t for t in tags.split(";") if t])
            return (f"{name}.{folded}" if folded else name), ""
        return name, f";{tags}"

    def counter(self, key: str) -> tuple[str, str | None]:
        name, tags = self.split(key)
        (rp, rs), (cp, cs) = self.counter_rate, self.counter_count
        count = f"{cp}{name}{cs}{tags}" if self.flush_counts else None
        return f"{rp}{name}{rs}{tags}", count

    def timer_prefix(self, key: str) -> tuple[str, str]:
        """(`<ns>.<name>.`, `<suffix><tags>`): a timer field path is prefix + field + tail."""
        name, tags = self.split(key)
        return f"{self.timer}{name}.", f"{self.suffix}{tags}"

    def gauge_path(self, key: str) -> str:
        name, tags = self.split(key)
        return f"{self.gauge[0]}{name}{self.gauge[1]}{tags}"

    def set_path(self, key: str, field: str = "count") -> str:
        """A set's series: `count` per interval, or `daily_count` for the UTC day so far."""
        name, tags = self.split(key)
        return f"{self.set[0]}{name}.{field}{self.set[1]}{tags}"

    def graphite_stat(self, stat: str) -> str:
        return f"{self.graphite_stats}{stat}{self.suffix}"
