"""Which client a metrics helper sends to: the one it was given, or the default at each use.

Helpers (`BusinessMetrics`, `SecurityMetrics`, the process collector, ...) are often built at
import time, before the application calls `statsd_metrics.configure()`, which replaces the
default client and closes the old one. So a helper given no client looks the default up at
every use, like the module-level `statsd_metrics.incr`, instead of keeping a closed one.
"""

from __future__ import annotations

from statsd_metrics.client import Client
from statsd_metrics.default import get_client


class ClientBinding:
    def __init__(self, client: Client | None = None):
        self._client = client

    @property
    def client(self) -> Client:
        client = self._client
        return client if client is not None else get_client()
