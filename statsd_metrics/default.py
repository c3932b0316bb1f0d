"""The process-wide default client, behind `statsd_metrics.incr`, `timed`, `counted`, ...

Like `logging.getLogger`, the module-level helpers work from import time on: decorators look the
client up on every call, not when they decorate. Until `configure()` is called, the first metric
creates a client from the environment (`STATSD_HOST`, `STATSD_PORT`, ...; see `ENVIRONMENT`),
which with nothing set is buffered UDP to 127.0.0.1:8125. `configure()` replaces it, flushing
and closing the previous one. Explicit arguments override the environment.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from typing import Any

from .client import Client
from .instruments import Counted, Timer, build
from .wire import TagsArg

# Environment variable -> Client option. Values are passed as strings; Client parses them.
ENVIRONMENT = {
    "STATSD_HOST": "host",
    "STATSD_PORT": "port",
    "STATSD_PREFIX": "prefix",
    "STATSD_TAGS": "tags",
    "STATSD_TRANSPORT": "transport",
    "STATSD_SOCKET_PATH": "socket_path",
    "STATSD_BUFFERED": "buffered",
    "STATSD_MAX_PACKET_SIZE": "max_packet_size",
    "STATSD_FLUSH_INTERVAL": "flush_interval",
}

_client: Client | None = None
_configured: dict[str, Any] = {}  # the options of the last configure() call
_lock = threading.Lock()


def options_from_environment(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    return {option: environ[name] for name, option in ENVIRONMENT.items() if name in environ}


def configure(**options: Any) -> Client:
    """Make a new default client from the environment and `options` (see `Client`)."""
    global _client, _configured
    client = Client(**{**options_from_environment(), **options})
    with _lock:
        previous, _client = _client, client
        _configured = dict(options)
    if previous is not None:
        previous.close()
    return client


def configured_options() -> dict[str, Any]:
    """What the application gave `configure()` (constant tags, prefix...), for a client built
    beside the default one (the Flask extension's) to name its metrics the same way."""
    with _lock:
        return dict(_configured)


def get_client() -> Client:
    """The default client, created from the environment on first use."""
    global _client
    client = _client
    if client is None:
        with _lock:
            if _client is None:
                _client = Client(**options_from_environment())
            client = _client
    return client


def incr(stat: str, count: float = 1, rate: float = 1, tags: TagsArg = None) -> None:
    get_client().incr(stat, count, rate, tags)


def decr(stat: str, count: float = 1, rate: float = 1, tags: TagsArg = None) -> None:
    get_client().decr(stat, count, rate, tags)


def gauge(
    stat: str, value: float, rate: float = 1, delta: bool = False, tags: TagsArg = None
) -> None:
    get_client().gauge(stat, value, rate, delta, tags)


def timing(stat: str, delta: float, rate: float = 1, tags: TagsArg = None) -> None:
    get_client().timing(stat, delta, rate, tags)


def set(stat: str, value: str | int, rate: float = 1, tags: TagsArg = None) -> None:
    get_client().set(stat, value, rate, tags)


def timed(stat: str | Callable | None = None, rate: float = 1, tags: TagsArg = None) -> Any:
    """`Client.timed` on whichever client is the default when the timed code runs."""
    return build(Timer, get_client, stat, rate, tags)


timer = timed


def counted(
    stat: str | Callable | None = None,
    rate: float = 1,
    tags: TagsArg = None,
    *,
    failures: bool | type[BaseException] | tuple[type[BaseException], ...] = False,
) -> Any:
    """`Client.counted` on whichever client is the default when the counted code runs."""
    return build(Counted, get_client, stat, rate, tags, failures)


def flush() -> None:
    get_client().flush()


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)
