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
    exceptions.<Type>       counter, exceptions raised while serving (HTTP errors such as
                            abort(404) are statuses, not exceptions), handled by an error
                            handler or not

Configuration (`app.config`):

    STATSD_HOST, STATSD_PORT, STATSD_PREFIX, ...  any of the client's environment settings
                            (statsd_metrics.default.ENVIRONMENT) give the app its own client,
                            the rest taken from the environment; with none, the extension
                            uses the process's default client (statsd_metrics.get_client())
    STATSD_METRICS_ENABLED              default True
    STATSD_METRICS_KEY                  "endpoint" (default) or "rule"
    STATSD_METRICS_EXCLUDE_ENDPOINTS    default ("static",), which covers blueprints' statics
    STATSD_METRICS_EXCLUDE_RULES        default: /health, /healthz, /livez, /readyz, ...
    STATSD_METRICS_UNMATCHED            the bucket of unknown URLs, default "unmatched"

Like the client, the extension never raises into the application: a failure inside a hook is
logged once and the request goes on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Rule

from statsd_metrics.binding import ClientBinding
from statsd_metrics.client import Client
from statsd_metrics.default import ENVIRONMENT, options_from_environment
from statsd_metrics.paths import segment
from statsd_metrics.shared_gauge import SharedGauge

log = logging.getLogger(__name__)

EXTENSION = "statsd_metrics"
DEFAULTS: dict[str, Any] = {
    "STATSD_METRICS_ENABLED": True,
    "STATSD_METRICS_KEY": "endpoint",
    "STATSD_METRICS_EXCLUDE_ENDPOINTS": ("static",),
    "STATSD_METRICS_EXCLUDE_RULES": ("/health", "/healthz", "/livez", "/readyz", "/ready",
                                     "/live", "/ping"),
    "STATSD_METRICS_UNMATCHED": "unmatched",
}  # fmt: skip
# Per-request state, kept in the WSGI environ (it lives exactly as long as the request).
_STATE = "statsd_metrics.request"  # (route, start), set by before_request
_STATUS = "statsd_metrics.status"  # (status code, response length), set by after_request
_RAISED = "statsd_metrics.raised"  # the exception already counted for this request


class _Route:
    """One route's metric names, built once: a request only looks them up."""

    __slots__ = ("base", "excluded", "in_flight", "latency", "request_bytes", "response_bytes",
                 "rule", "statuses")  # fmt: skip

    def __init__(self, client: Client | None, rule: Rule | None, key: str, excluded: bool):
        self.rule = rule  # kept alive: routes are looked up by id(rule)
        self.excluded = excluded
        self.base = f"http.{key}"
        self.latency = f"{self.base}.latency"
        self.request_bytes = f"{self.base}.request_bytes"
        self.response_bytes = f"{self.base}.response_bytes"
        self.in_flight = SharedGauge(client, f"{self.base}.in_flight")
        self.statuses: dict[int, str] = {}

    def status(self, code: int) -> str:
        name = self.statuses.get(code)
        if name is None:
            name = self.statuses[code] = f"{self.base}.status.{code // 100}xx.{code}"
        return name


@dataclass(frozen=True)
class Settings:
    key: str
    exclude_endpoints: frozenset[str]
    exclude_rules: frozenset[str]
    unmatched: str

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        """Checked at start-up: a bad setting is an error now, not odd metrics later."""
        key = config["STATSD_METRICS_KEY"]
        if key not in ("endpoint", "rule"):
            raise ValueError(f"STATSD_METRICS_KEY must be 'endpoint' or 'rule', not {key!r}")
        return cls(
            key=key,
            exclude_endpoints=_words(config["STATSD_METRICS_EXCLUDE_ENDPOINTS"]),
            exclude_rules=_words(config["STATSD_METRICS_EXCLUDE_RULES"]),
            unmatched=segment(config["STATSD_METRICS_UNMATCHED"], fallback="unmatched"),
        )


def _words(value: str | Iterable[str]) -> frozenset[str]:
    return frozenset([value] if isinstance(value, str) else value)


class AppMetrics(ClientBinding):
    """What the extension keeps per application, in `app.extensions["statsd_metrics"]`."""

    def __init__(self, client: Client | None, settings: Settings):
        super().__init__(client)
        self.settings = settings
        # By id(): rules compare by value and are unhashable; each _Route keeps its rule alive.
        self.routes: dict[int, _Route] = {}
        self._failed = False

    def route(self, rule: Rule | None) -> _Route:
        found = self.routes.get(id(rule))
        if found is None:
            found = self.routes[id(rule)] = self._new_route(rule)
        return found

    def _new_route(self, rule: Rule | None) -> _Route:
        s = self.settings
        if rule is None:
            return _Route(self._client, None, s.unmatched, excluded=False)
        endpoint = rule.endpoint or ""
        blueprint_view = endpoint.rpartition(".")[2]  # a blueprint's "static" is static too
        excluded = (
            endpoint in s.exclude_endpoints
            or ("." in endpoint and blueprint_view in s.exclude_endpoints)
            or rule.rule in s.exclude_rules
        )
        key = segment(endpoint if s.key == "endpoint" else rule.rule, fallback="root")
        return _Route(self._client, rule, key, excluded)

    def _hook_failed(self) -> None:
        if not self._failed:
            self._failed = True
            log.exception("statsd_metrics.flask: a request hook failed (logged once)")

    # -- request hooks: kept small, they run on every request ---------------------------------
    def before(self) -> None:
        try:
            route = self.route(request.url_rule)
            if not route.excluded:
                request.environ[_STATE] = (route, time.perf_counter())
                route.in_flight.add(1)
        except Exception:
            self._hook_failed()

    def after(self, response: Response) -> Response:
        try:
            environ = request.environ
            if _STATE in environ:
                environ[_STATUS] = (response.status_code, _length(response))
        except Exception:
            self._hook_failed()
        return response

    def teardown(self, exc: BaseException | None) -> None:
        try:
            environ = request.environ
            state = environ.pop(_STATE, None)
            if state is None:
                return
            route, start = state
            client = self.client
            client.timing(route.latency, (time.perf_counter() - start) * 1000.0)
            # No status when the exception propagated out of Flask (debug, testing): the
            # server answers 500.
            code, length = environ.pop(_STATUS, (500, None))
            client.incr(route.status(code))
            size = request.content_length
            if size:
                client.timing(route.request_bytes, size)
            if length is not None:
                client.timing(route.response_bytes, length)
            raised = environ.pop(_RAISED, None)
            if raised is not None or (exc is not None and not isinstance(exc, HTTPException)):
                name = type(raised if raised is not None else exc).__name__
                client.incr(f"{route.base}.exceptions.{segment(name)}")
            route.in_flight.add(-1)
        except Exception:
            self._hook_failed()

    def wrap_exception_handler(self, handle: Callable[[Exception], Any]) -> Callable:
        """Note each exception before Flask's error handlers see it (they may turn it into an
        ordinary response, and then teardown never hears of it)."""

        def handle_user_exception(e: Exception) -> Any:
            if not isinstance(e, HTTPException):
                try:
                    environ = request.environ
                    if _STATE in environ:
                        environ.setdefault(_RAISED, e)
                except Exception:
                    self._hook_failed()
            return handle(e)

        return handle_user_exception


def _length(response: Response) -> int | None:
    length = response.content_length
    if length is None and not response.is_streamed:
        length = response.calculate_content_length()
    return length


def client_from_config(config: Mapping[str, Any]) -> Client | None:
    """A client for the app when its config holds any STATSD_* client setting, else None."""
    options = {option: config[name] for name, option in ENVIRONMENT.items() if name in config}
    if not options:
        return None
    return Client(**{**options_from_environment(), **options})


class StatsdMetrics:
    """Flask extension: `StatsdMetrics(app)` or `StatsdMetrics(client=...).init_app(app)`."""

    def __init__(self, app: Flask | None = None, *, client: Client | None = None):
        self._client = client
        self._app_metrics: AppMetrics | None = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        for key, value in DEFAULTS.items():
            app.config.setdefault(key, value)
        client = self._client or client_from_config(app.config)
        metrics = AppMetrics(client, Settings.from_config(app.config))
        app.extensions[EXTENSION] = metrics
        self._app_metrics = metrics
        if not app.config["STATSD_METRICS_ENABLED"]:
            return
        # First in line, so that a hook that answers early (a redirect to login) is still timed.
        app.before_request_funcs.setdefault(None, []).insert(0, metrics.before)
        app.after_request(metrics.after)
        app.teardown_request(metrics.teardown)
        app.handle_user_exception = metrics.wrap_exception_handler(app.handle_user_exception)  # type: ignore[method-assign]

    @property
    def client(self) -> Client:
        """The current application's client (or that of the one app this was set up with)."""
        try:
            return current_app.extensions[EXTENSION].client
        except (RuntimeError, KeyError):
            if self._app_metrics is None:
                raise RuntimeError("StatsdMetrics is not initialised with an app") from None
            return self._app_metrics.client
