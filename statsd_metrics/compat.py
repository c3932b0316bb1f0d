"""The `statsd` package's three client classes, as constructors of our `Client`.

    from statsd_metrics.compat import StatsClient, TCPStatsClient, UnixSocketStatsClient

Each takes the package's arguments in the package's positions, so that replacing the import
is the whole migration; every `Client` option can be added by keyword. What differs is listed
in docs/migration.md (defaults: buffered, `127.0.0.1`, both IP families).
"""

from __future__ import annotations

from typing import Any

from .client import Client

# `statsd.StatsClient(host, port, prefix, maxudpsize, ipv6)`: the same positions.
StatsClient = Client


class TCPStatsClient(Client):
    """`statsd.TCPStatsClient(host, port, prefix, timeout, ipv6)`."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int | str = 8125,
        prefix: str | None = None,
        timeout: float | str | None = None,
        ipv6: bool | str = False,
        **options: Any,
    ) -> None:
        super().__init__(
            host, port, prefix, None, ipv6, transport="tcp", timeout=timeout, **options
        )


class UnixSocketStatsClient(Client):
    """`statsd.UnixSocketStatsClient(socket_path, prefix, timeout)`: a stream socket, or a
    datagram one (the transport finds out which)."""

    def __init__(
        self,
        socket_path: str,
        prefix: str | None = None,
        timeout: float | str | None = None,
        **options: Any,
    ) -> None:
        super().__init__(prefix=prefix, socket_path=socket_path, timeout=timeout, **options)
