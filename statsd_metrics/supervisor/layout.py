"""Which parts a pipeline has and where each one listens and keeps its files.

One machine runs one carbon-cache, the render API and one aggregator. The cluster layout puts
carbon-c-relay in front of several carbon-caches and may run several aggregators; instance N of
a part listens on its base port + 100·N, the way carbon numbers its instances (2003, 2103, ...).
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
INSTANCE_STRIDE = 100
# Whisper archives above the flush interval are 1 min and 10 min: the interval must divide them.
FLUSH_INTERVALS = tuple(s for s in range(1, 61) if 60 % s == 0)


class LayoutError(ValueError):
    """A layout that cannot work; the message names the setting and why."""


@dataclass(frozen=True)
class Ports:
    """Base ports, one per role (instance N adds 100·N)."""

    statsd: int = 8125
    mgmt: int = 8126
    carbon: int = 2003
    pickle: int = 2004
    carbonlink: int = 7002
    relay: int = 2013
    render: int = 8888


@dataclass(frozen=True)
class CarbonCache:
    instance: str
    line_port: int
    pickle_port: int
    carbonlink_port: int


@dataclass(frozen=True)
class Aggregator:
    index: int
    port: int
    mgmt_port: int


@dataclass(frozen=True)
class Layout:
    data_dir: Path
    flush_interval: int
    caches: tuple[CarbonCache, ...]
    aggregators: tuple[Aggregator, ...]
    relay_port: int | None
    render_port: int

    @classmethod
    def build(
        cls,
        data_dir: Path,
        ports: Ports = Ports(),
        *,
        caches: int = 1,
        aggregators: int = 1,
        flush_interval: float = 10,
    ) -> Layout:
        if flush_interval not in FLUSH_INTERVALS:
            raise LayoutError(
                f"--flush-interval {flush_interval:g}: must be a whole number of seconds that "
                f"divides 60 ({', '.join(map(str, FLUSH_INTERVALS))}); Whisper keeps one point "
                "per second at most and its 1 min and 10 min archives are multiples of it"
            )
        if not 1 <= caches <= len(string.ascii_lowercase):
            raise LayoutError(f"--caches {caches}: between 1 and 26 carbon-cache instances")
        if aggregators < 0:
            raise LayoutError(f"--aggregators {aggregators}: cannot be negative")
        return cls(
            data_dir=data_dir.resolve(),
            flush_interval=int(flush_interval),
            caches=tuple(
                CarbonCache(
                    instance=string.ascii_lowercase[n],
                    line_port=ports.carbon + n * INSTANCE_STRIDE,
                    pickle_port=ports.pickle + n * INSTANCE_STRIDE,
                    carbonlink_port=ports.carbonlink + n * INSTANCE_STRIDE,
                )
                for n in range(caches)
            ),
            aggregators=tuple(
                Aggregator(
                    index=n,
                    port=ports.statsd + n * INSTANCE_STRIDE,
                    mgmt_port=ports.mgmt + n * INSTANCE_STRIDE,
                )
                for n in range(aggregators)
            ),
            relay_port=ports.relay if caches > 1 else None,
            render_port=ports.render,
        )

    @property
    def carbon_port(self) -> int:
        """Where Graphite plaintext enters: the relay if there is one, else the only cache."""
        return self.relay_port if self.relay_port is not None else self.caches[0].line_port

    @property
    def conf_dir(self) -> Path:
        return self.data_dir / "conf"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "log"

    def storage_dir(self, cache: CarbonCache) -> Path:
        return self.data_dir / f"carbon-{cache.instance}"

    def whisper_dir(self, cache: CarbonCache) -> Path:
        return self.storage_dir(cache) / "whisper"

    def carbon_conf(self, cache: CarbonCache) -> Path:
        # carbon reads storage-schemas.conf and storage-aggregation.conf beside carbon.conf.
        return self.conf_dir / f"carbon-{cache.instance}" / "carbon.conf"

    @property
    def render_conf(self) -> Path:
        return self.conf_dir / "graphite-render.yaml"

    @property
    def relay_conf(self) -> Path:
        return self.conf_dir / "carbon-c-relay.conf"

    def aggregator_conf(self, agg: Aggregator) -> Path:
        return self.conf_dir / f"aggregator-{agg.index}.json"

    def spool_dir(self, agg: Aggregator) -> Path:
        """Where the aggregator keeps flushes Carbon could not take (replayed in order)."""
        return self.data_dir / f"aggregator-{agg.index}" / "spool"
