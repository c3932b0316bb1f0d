"""statsd-metrics client library: fire-and-forget StatsD metrics for web applications.

    import statsd_metrics

    @statsd_metrics.timed                   # timer <module>.<function>, in ms
    def handler(): ...

    statsd_metrics.configure(prefix="teamapp", tags={"env": "prod"})   # or STATSD_* variables
    statsd_metrics.incr("logins", tags={"outcome": "ok"})

See docs/client.md. Nothing here raises into the application; drops are counted in
`Client.stats()`.
"""

__version__ = "0.1.0"  # the one place; setup.cfg reads it (version = attr: ...)

from .client import Client
from .default import (
    configure,
    counted,
    decr,
    flush,
    gauge,
    get_client,
    incr,
    set,
    timed,
    timer,
    timing,
)
from .instruments import Counted, Timer
from .pipeline import Pipeline

__all__ = [
    "Client",
    "Counted",
    "Pipeline",
    "Timer",
    "configure",
    "counted",
    "decr",
    "flush",
    "gauge",
    "get_client",
    "incr",
    "set",
    "timed",
    "timer",
    "timing",
]
