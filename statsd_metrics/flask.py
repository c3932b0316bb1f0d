"""The Flask extension: request rate, latency, status, exceptions, in-flight and sizes.

    metrics = StatsdMetrics(app)          # or: metrics = StatsdMetrics(); metrics.init_app(app)

Every request is keyed by its route (the endpoint name, or the URL rule's template with
`STATSD_METRICS_KEY = "rule"`), never by its raw URL: `/players/17` and `/players/18` are one
route, and URLs that match no route all fall into one `unmatched` bucket. Health checks and
static files are left out by default. Names, all under `<prefix>.http.<route>.` (docs/metrics.md):

    latency                 timer, ms, from the first before_request hook to the last teardown
    status.<class>.<code>   counter, e.g. status.2xx.200, status.5xx.503
    in_flight               shared gauge: requests being served now, over all processes
    request_bytes           timer, bytes, requests that carry a body
    response_bytes          timer, bytes, responses of known length
    exceptions.<Type>       counter, exceptions that escaped the view (they become 500s)

Configuration (`app.config`):

    STATSD_HOST, STATSD_PORT, STATSD_PREFIX   build the extension's own client; without any of
                                              them the module-level default client is used
    STATSD_METRICS_ENABLED                    default True
    STATSD_METRICS_KEY                        "endpoint" (default) or "rule"
    STATSD_METRICS_EXCLUDE_ENDPOINTS          default ("static",): blueprints' statics too
    STATSD_METRICS_EXCLUDE_RULES              default: /health, /healthz, /livez, /readyz, ...
    STATSD_METRICS_UNMATCHED                  the bucket for unknown URLs, default "unmatched"
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, current_app, request
from werkzeug.routing import Rule

from statsd_metrics.paths import segment
from statsd_metrics.shared_gauge import SharedGauge

EXTENSION = "statsd_metrics"
DEFAULTS: dict[str, Any] = {
    "STATSD_METRICS_ENABLED": True,
    "STATSD_METRICS_KEY": "endpoint",
    "STATSD_METRICS_EXCLUDE_ENDPOINTS": ("static",),
    "STATSD_METRICS_EXCLUDE_RULES": (
        "/health",
        "/healthz",
        "/livez",
        "/readyz",
        "/ready",
        "/live",
        "/ping",
    ),
    "STATSD_METRICS_UNMATCHED": "unmatched",
}
_STATE = "statsd_metrics.request"  # (route, start) in the WSGI environ
_STATUS = "statsd_metrics.status"  # (status code, response length) set by after_request


class _Route:
    """One route's metric names, built once: a request only looks them up."""

    __slots__ = (
        "base",
        "excluded",
        "in_flight",
        "latency",
        "request_bytes",
        "response_bytes",
        "rule",
        "statuses",
    )

    def __init__(self, client, rule: Rule | None, key: str, excluded: bool):
        self.rule = rule  # kept alive: routes are looked up by id(rule)
        self.excluded = excluded
        self.base = f"http.{key}"
        self.latency = f"{self.base}.latency"
        self.request_bytes = f"{self.base}.request_bytes"
        self.response_bytes = f"{self.base}.response_bytes"
        self.in_flight = None if excluded else SharedGauge(client, f"{self.base}.in_flight")
        self.statuses: dict[int, str] = {}

    def status(self, code: int) -> str:
        name = self.statuses.get(code)
        if name is None:
            name = self.statuses[code] = f"{self.base}.status.{code // 100}xx.{code}"
        return name


@dataclass
class _Settings:
    key: str
    exclude_endpoints: frozenset[str]
    exclude_rules: frozenset[str]
    unmatched: str

    @classmethod
    def from_config(cls, config: Any) -> _Settings:
        key = config["STATSD_METRICS_KEY"]
        if key not in ("endpoint", "rule"):
            raise ValueError(f"STATSD_METRICS_KEY must be 'endpoint' or 'rule', not {key!r}")
        return cls(
            key=key,
            exclude_endpoints=_names(config["STATSD_METRICS_EXCLUDE_ENDPOINTS"]),
            exclude_rules=_names(config["STATSD_METRICS_EXCLUDE_RULES"]),
            unmatched=segment(config["STATSD_METRICS_UNMATCHED"], fallback="unmatched"),
        )


def _names(value: str | Iterable[str]) -> frozenset[str]:
    return frozenset([value] if isinstance(value, str) else value)


@dataclass
class AppMetrics:
    """What the extension keeps per application, in `app.extensions["statsd_metrics"]`."""

    client: Any
    settings: _Settings
    # By id(): rules compare by value and are unhashable; each _Route keeps its rule alive.
    routes: dict[int, _Route] = field(default_factory=dict)

    def route(self, rule: Rule | None) -> _Route:
        found = self.routes.get(id(rule))
        if found is None:
            found = self.routes[id(rule)] = self._new_route(rule)
        return found

    def _new_route(self, rule: Rule | None) -> _Route:
        s = self.settings
        if rule is None:
            return _Route(self.client, None, s.unmatched, excluded=False)
        endpoint = rule.endpoint or ""
        blueprint_view = endpoint.rpartition(".")[2]  # a blueprint's "static" is static too
        excluded = (
            endpoint in s.exclude_endpoints
            or ("." in endpoint and blueprint_view in s.exclude_endpoints)
            or rule.rule in s.exclude_rules
        )
        key = segment(endpoint if s.key == "endpoint" else rule.rule, fallback="root")
        return _Route(self.client, rule, key, excluded)

    # -- request hooks: kept small, they run on every request ---------------------------------
    def before(self) -> None:
        route = self.route(request.url_rule)
        if not route.excluded:
            request.environ[_STATE] = (route, time.perf_counter())
            route.in_flight.add(1)

    def after(self, response: Response) -> Response:
        if _STATE in request.environ:
            request.environ[_STATUS] = (response.status_code, _length(response))
        return response

    def teardown(self, exc: BaseException | None) -> None:
        environ = request.environ
        state = environ.pop(_STATE, None)
        if state is None:
            return
        route, start = state
        client = self.client
        client.timing(route.latency, (time.perf_counter() - start) * 1000.0)
        # No status when an exception propagated past Flask (debug/testing): the server sends 500.
        code, length = environ.pop(_STATUS, (500, None))
        client.incr(route.status(code))
        size = request.content_length
        if size:
            client.timing(route.request_bytes, size)
        if length is not None:
            client.timing(route.response_bytes, length)
        if exc is not None:
            client.incr(f"{route.base}.exceptions.{segment(type(exc).__name__)}")
        route.in_flight.add(-1)


def _length(response: Response) -> int | None:
    length = response.content_length
    if length is None and not response.is_streamed:
        length = response.calculate_content_length()
    return length


class StatsdMetrics:
    """Flask extension: `StatsdMetrics(app)` or `StatsdMetrics(client=...).init_app(app)`."""

    def __init__(self, app: Flask | None = None, *, client=None):
        self._client = client
        self._app_metrics: AppMetrics | None = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        for key, value in DEFAULTS.items():
            app.config.setdefault(key, value)
        metrics = AppMetrics(
            self._client or _client_from_config(app.config), _Settings.from_config(app.config)
        )
        app.extensions[EXTENSION] = metrics
        self._app_metrics = metrics
        if not app.config["STATSD_METRICS_ENABLED"]:
            return
        # First in line, so that a hook returning early (a redirect to login) is still timed.
        app.before_request_funcs.setdefault(None, []).insert(0, metrics.before)
        app.after_request(metrics.after)
        app.teardown_request(metrics.teardown)

    @property
    def client(self):
        """The client of the current application (or of the one app this was set up with)."""
        try:
            return current_app.extensions[EXTENSION].client
        except (RuntimeError, KeyError):
            if self._app_metrics is None:
                raise RuntimeError("StatsdMetrics is not initialised with an app") from None
            return self._app_metrics.client


def _client_from_config(config: Any):
    raise NotImplementedError  # built on the client library's API once it lands
