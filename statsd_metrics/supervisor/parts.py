"""The processes of a pipeline layout: how each is started and how we know it answers.

Start order follows the data backwards (storage first, then what feeds it), so that nothing
sends to a part that is not listening yet; the supervisor stops them in reverse, so that each
part's last output reaches a part that is still running: the aggregators' final flush reaches
the relay or cache, the relay's queue reaches the caches, and the caches write it all to Whisper.
"""

from __future__ import annotations

import socket
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path

from ..graphite import CONF_DIR
from . import Part
from .carbon_python import CarbonPython
from .layout import HOST, INSTANCE_STRIDE, Aggregator, CarbonCache, Layout

PROBE_TIMEOUT = 1.0
DEMO_SECONDS = 86_400  # the demo's traffic is bounded: one real day
DEMO_BANNER = "demo: app "


def tcp_accepts(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=PROBE_TIMEOUT):
            return True
    except OSError:
        return False


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT) as response:
            return response.status == 200
    except OSError:
        return False


def all_of(*probes: Callable[[], bool]) -> Callable[[], bool]:
    return lambda: all(probe() for probe in probes)


def carbon_cache(layout: Layout, cache: CarbonCache, python: CarbonPython) -> Part:
    # carbon refuses to start while its pidfile names a live process, any process: after a
    # crash the pid may have been reused. The data directory's lock says no other `up` runs.
    pidfile = layout.storage_dir(cache) / f"carbon-cache-{cache.instance}.pid"
    n = layout.caches.index(cache)
    return Part(
        name=f"carbon-cache {cache.instance}",
        argv=[
            python.executable,
            "-m",
            "statsd_metrics.graphite.carbon_cache",
            f"--config={layout.carbon_conf(cache)}",
            f"--instance={cache.instance}",
            "--debug",
            "start",
        ],
        # Both the receiver and the carbonlink port: the render API asks the latter.
        ready=all_of(
            lambda: tcp_accepts(cache.line_port), lambda: tcp_accepts(cache.carbonlink_port)
        ),
        listens=[
            (cache.line_port, "tcp", _flag("--carbon-port", n)),
            (cache.pickle_port, "tcp", _flag("--pickle-port", n)),
            (cache.carbonlink_port, "tcp", _flag("--carbonlink-port", n)),
        ],
        # Which interpreter has carbon was settled before (carbon_python.find).
        env={**python.env, "GRAPHITE_ROOT": str(layout.data_dir)},
        # Writing a large cache to Whisper at shutdown takes time; killing it loses the points.
        stop_timeout=300.0,
        prepare=lambda: pidfile.unlink(missing_ok=True),
    )


def relay(layout: Layout) -> Part:
    assert layout.relay_port is not None
    port = layout.relay_port
    return Part(
        name="carbon-c-relay",
        argv=["carbon-c-relay", "-f", str(layout.relay_conf)],
        ready=lambda: tcp_accepts(port),
        listens=[(port, "tcp", "--relay-port")],
        programs=("carbon-c-relay",),
        install="apt-get install carbon-c-relay, or ./scripts/system-deps",
        stop_timeout=30.0,
    )


# The preview reads its dashboards from here (statsd_metrics/preview), as Grafana's dashboard
# provider does from the same variable (README, "Grafana").
DASHBOARDS_VARIABLE = "STATSD_METRICS_DASHBOARDS"
SHIPPED_DASHBOARDS = CONF_DIR / "grafana" / "dashboards"


def render_api(layout: Layout, python: CarbonPython, dashboards: Path = SHIPPED_DASHBOARDS) -> Part:
    url = f"http://{HOST}:{layout.render_port}/metrics/find?query=*"
    return Part(
        name="render API",
        argv=[
            python.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"{HOST}:{layout.render_port}",
            # Grafana sends one request per panel, in parallel; each is mostly file I/O.
            "--workers",
            "2",
            "--graceful-timeout",
            "5",
            # gunicorn >= 25.1 opens a control socket (reload, worker count, shutdown) at one
            # path per user, $HOME/.gunicorn/gunicorn.ctl, shared by every gunicorn of that
            # user on the machine: another one takes it over. Nothing here uses it.
            "--no-control-socket",
            "--error-logfile",
            "-",
            # graphite-render's app plus the dashboard preview at /dashboards/
            "statsd_metrics.preview:app",
        ],
        ready=lambda: http_ok(url),
        listens=[(layout.render_port, "tcp", "--render-port")],
        env={
            **python.env,
            "GRAPHITE_API_CONFIG": str(layout.render_conf),
            DASHBOARDS_VARIABLE: str(dashboards),
        },
        stop_timeout=15.0,
    )


def aggregator(layout: Layout, agg: Aggregator) -> Part:
    health = f"http://{HOST}:{agg.mgmt_port}/health"
    return Part(
        name=f"aggregator {agg.index}",
        argv=[
            sys.executable,
            "-m",
            "aggregator",
            "--config",
            str(layout.aggregator_conf(agg)),
            "--bind",
            HOST,
            "--port",
            str(agg.port),
            "--graphite-host",
            HOST,
            "--graphite-port",
            str(layout.carbon_port),
            "--flush-interval",
            str(layout.flush_interval),
            "--mgmt-port",
            str(agg.mgmt_port),
        ],
        ready=lambda: http_ok(health),  # 200 once its receivers run
        listens=[
            (agg.port, "udp", _flag("--statsd-port", agg.index)),
            (agg.mgmt_port, "tcp", _flag("--mgmt-port", agg.index)),
        ],
        modules=("aggregator.__main__",),
        install='pip install "statsd-metrics"',
        stop_timeout=30.0,
    )


def demo_app(layout: Layout) -> Part:
    """A small instrumented app and simulated users (statsd_metrics.demo), sending to the
    first aggregator; shipped in the package, so it runs from an installed wheel."""
    part = Part(
        name="demo",
        argv=[
            sys.executable,
            "-m",
            "statsd_metrics.demo",
            "--statsd-port",
            str(layout.aggregators[0].port),
            "--duration",
            str(DEMO_SECONDS),
        ],
        ready=lambda: False,
        modules=("flask", "sqlalchemy", "requests", "psutil"),
        install='pip install "statsd-metrics[demo]"',
        stop_timeout=30.0,
    )
    # Ready once it prints its banner: the app then answers.
    part.ready = lambda: DEMO_BANNER in demo_banner(part)
    return part


def demo_banner(part: Part) -> str:
    """The demo's first log line (where its app listens), or "" before it has one."""
    if part.log is None or not part.log.exists():
        return ""
    with part.log.open(errors="replace") as log:
        return log.readline().strip()


def _flag(flag: str, index: int) -> str:
    """The flag that moves a port; instance N listens at its value + 100·N."""
    return flag if index == 0 else f"{flag} (instance {index} uses it + {INSTANCE_STRIDE * index})"


def parts(
    layout: Layout,
    python: CarbonPython,
    *,
    demo: bool = False,
    dashboards: Path = SHIPPED_DASHBOARDS,
) -> list[Part]:
    """`python` runs carbon-cache and the render API (carbon_python.find); the preview shows
    the dashboards in `dashboards` (an `init` copy's, when `up` runs from one)."""
    found = [carbon_cache(layout, cache, python) for cache in layout.caches]
    if layout.relay_port is not None:
        found.append(relay(layout))
    found.append(render_api(layout, python, dashboards))
    found += [aggregator(layout, agg) for agg in layout.aggregators]
    if demo:
        found.append(demo_app(layout))  # last: it feeds everything else
    return found
