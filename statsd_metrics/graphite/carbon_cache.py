"""carbon-cache, as `carbon-cache.py` runs it, plus a drain of its cache at shutdown.

Run as `python -m statsd_metrics.graphite.carbon_cache --config=ABS/carbon.conf --debug start`.

Why: carbon 1.1.10's writer thread leaves its loop as soon as the reactor stops, so points that
arrived after its last pass (up to a second's worth, and everything MIN_TIMESTAMP_LAG holds back)
are dropped on SIGTERM. The last StatsD flush before a shutdown is exactly such points. Here the
same twistd plugin runs with one more service, which writes whatever is left in the cache once
the listeners are closed and the writer thread has been joined.
"""

from __future__ import annotations

import os
import sys

from carbon import log
from carbon.cache import MetricCache
from carbon.exceptions import CarbonConfigException
from carbon.util import run_twistd_plugin
from twisted.application.service import Service
from twisted.plugins import carbon_cache_plugin

# Bounded: each pass writes every series in the cache; more than one is needed only when the
# timesorted strategy had filtered by MIN_TIMESTAMP_LAG before shutdown set it to 0.
DRAIN_PASSES = 5


def drain_cache() -> None:
    # carbon.writer reads the storage schemas when imported: only after carbon parsed its config.
    from carbon.writer import writeCachedDataPoints  # noqa: PLC0415

    cache = MetricCache()
    before = cache.size
    for _ in range(DRAIN_PASSES):
        if not cache:
            break
        writeCachedDataPoints()
    log.msg(f"shutdown drain: wrote {before - cache.size} cached points, {cache.size} left")


class DrainOnShutdown(Service):
    def startService(self) -> None:
        # The reactor is installed by twistd before services start; importing it earlier would
        # install the default one and make twistd's --reactor=epoll fail.
        from twisted.internet import reactor  # noqa: PLC0415

        # "after shutdown" runs once the receivers are closed and the thread pool (the writer)
        # has been joined: nothing else touches the cache any more.
        # Twisted's stubs type `reactor` as the zope interface, whose methods have no `self`.
        reactor.addSystemEventTrigger("after", "shutdown", drain_cache)  # type: ignore[arg-type]
        super().startService()


def main() -> None:
    make_service = carbon_cache_plugin.serviceMaker.makeService

    def make_draining_service(options):
        root = make_service(options)
        DrainOnShutdown().setServiceParent(root)
        return root

    # Deliberate: the plugin's service maker, wrapped so twistd builds the draining service.
    carbon_cache_plugin.serviceMaker.makeService = make_draining_service  # type: ignore[method-assign]
    # run_twistd_plugin takes the program name ("carbon-cache") from the script's file name.
    script = os.path.join(os.path.dirname(os.path.abspath(sys.argv[0])), "carbon-cache.py")
    try:
        run_twistd_plugin(script)
    except CarbonConfigException as exc:
        raise SystemExit(str(exc)) from None


if __name__ == "__main__":
    main()
