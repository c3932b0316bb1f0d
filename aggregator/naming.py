"""Graphite paths: the reference's legacy and new namespaces, prefixes, suffix and tags.

A key is `name` or `name;tag;tag...` (tags as `k=v`, or bare). With tag_mode "graphite" the
tags follow the suffix as Graphite tags (`path.sfx;k=v`), as the reference writes them. With
tag_mode "path" they are folded into ONE path segment right after the name, so tag-unaware
render APIs can query them and a wildcard in any other position keeps its meaning:
`name;b=2;a=1` becomes the name `name.a-1--b-2` (tags sorted by key, each `key-value`, joined
by `--`; `.`, `=` and `;` inside a key or value written as `_`; a bare tag is its key alone).
However many tags a series has, they add exactly one segment, so a query such as
`stats.timers.app.http.*.latency.*.upper` reads every tag set, host included, of every route.

`host_tag` adds `host=<name>` to every series this aggregator writes, its own included, so that
several aggregators writing the same names (one per application host, or `up --aggregators 2`)
write different series instead of overwriting each other's points in Whisper; the dashboards
and alert rules sum or max over the tag segment.
"""

from __future__ import annotations

import functools
import re
import socket

from .config import Config

_WHITESPACE = re.compile(r"\s+")
_DISALLOWED = re.compile(r"[^a-zA-Z_\-0-9.;=]")


def sanitize(key: str) -> str:
    """The reference's keyNameSanitize: whitespace runs -> `_`, `/` -> `-`, drop the rest.

    Parsing applies it at ingress; paths apply it again when keys were kept raw.
    """
    return _DISALLOWED.sub("", _WHITESPACE.sub("_", key).replace("/", "-"))


_SEPARATORS = str.maketrans(".=;", "___")


def fold_tags(tags: list[str]) -> str:
    """`["b=2", "a=1", "flag"]` -> `a-1--b-2--flag`: the one path-mode tag segment."""
    folded = []
    for tag in sorted(tags, key=lambda t: t.partition("=")[::2]):
        key, _, value = tag.partition("=")
        folded.append("-".join(part.translate(_SEPARATORS) for part in (key, value) if part))
    return "--".join(part for part in folded if part)


@functools.lru_cache(maxsize=65536)
def _fold(tags: str) -> str:
    """fold_tags of a key's `;`-joined tags: a few tag sets (constant tags, the host) recur in
    every key of a flush, so their folding is remembered."""
    return fold_tags([t for t in tags.split(";") if t])


def host_name(setting: str) -> str:
    """The host tag's value: "" = none, "auto" = this machine's name, else the setting."""
    if setting != "auto":
        return setting
    return socket.gethostname() or "localhost"


class Namer:
    """Precomputes the namespace strings of one configuration."""

    def __init__(self, config: Config) -> None:
        self.path_tags = config.tag_mode == "path"
        self.raw_keys = not config.key_name_sanitize
        self.flush_counts = config.flush_counts
        host = sanitize(host_name(config.host_tag)).replace(";", "_").replace("=", "_")
        self.host_tag = f"host={host}" if host else ""
        # what the aggregator's own series (no key of their own) carry after their name
        if not self.host_tag:
            self.own_tail = ""
        elif self.path_tags:
            self.own_tail = f".{fold_tags([self.host_tag])}"
        else:
            self.own_tail = f";{self.host_tag}"
        s = f".{config.global_suffix}" if config.global_suffix else ""
        self.suffix = s
        ps = config.prefix_stats
        if config.legacy_namespace:
            self.counter_rate = ("stats.", s)
            self.counter_count = ("stats_counts.", s)
            self.timer = "stats.timers."
            self.gauge = ("stats.gauges.", s)
            self.set = "stats.sets."
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
            self.set = ns(config.prefix_set)
            stats_ns = ".".join([*g, ps])
            self.num_stats = f"{stats_ns}.numStats{s}"
        self.calculation_time = self._own(f"{stats_ns}.graphiteStats.calculationtime")
        self.processing_time = self._own(f"{stats_ns}.processing_time")
        self.num_stats = self._own(self.num_stats.removesuffix(s))
        self.graphite_stats = f"{stats_ns}.graphiteStats."

    def _own(self, name: str) -> str:
        """An aggregator series that is no key: the host tag's segment, then the suffix."""
        if self.path_tags:
            return f"{name}{self.own_tail}{self.suffix}"
        return f"{name}{self.suffix}{self.own_tail}"

    def split(self, key: str) -> tuple[str, str]:
        """(name, tag part to append after the suffix) for this configuration."""
        name, sep, tags = key.partition(";")
        if self.raw_keys:  # keys were kept raw at ingress; the output must still be a path
            name, tags = sanitize(name), sanitize(tags)
        if not sep or not tags:  # the commonest key: no tags of its own
            if self.path_tags:
                return f"{name}{self.own_tail}", ""
            return name + sep, self.own_tail  # a dangling `;` stays, as the reference keeps it
        if self.host_tag and not any(t.startswith("host=") for t in tags.split(";")):
            tags = f"{tags};{self.host_tag}"
        if self.path_tags:
            folded = _fold(tags)
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
        """A set's series: `count` per flush, or another field of the same set (the daily
        distinct count is `daily_count`), tags folded as for every other type."""
        name, tags = self.split(key)
        return f"{self.set}{name}.{field}{self.suffix}{tags}"

    def graphite_stat(self, stat: str) -> str:
        return self._own(f"{self.graphite_stats}{stat}")
