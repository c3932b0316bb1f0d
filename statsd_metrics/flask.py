"""The Flask extension: request rate, latency, status, exceptions, in-flight and sizes.

    metrics = StatsdMetrics(app)          # or: metrics = StatsdMetrics(); metrics.init_app(app)

Every request is keyed by its route (the endpoint name, or the URL rule's template with
`STATSD_METRICS_KEY = "rule"`), never by its raw URL: `/players/17` and `/players/18` are one
route, and URLs that match no route all fall into one `unmatched` bucket. Health checks and
static files are left out by default. Names, all under `<prefix>.http.<route>.` (docs/metrics.md):

    latency                 timer, ms, from Flask receiving the request to its answer (status
                            and headers; a streamed body is not waited for)
    status.<class>.<code>   counter, e.g. status.2xx.200, status.5xx.503
    in_flight               shared gauge: requests being served now, over all processes
    request_bytes           timer, bytes rounded up to a power of two, requests with a body
    response_bytes          timer, bytes rounded up to a power of two, responses of known length
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
    STATSD_METRICS_SIZES                "buckets" (default), "exact" or "off"
    STATSD_METRICS_SIZE_EXCLUDE_ENDPOINTS  endpoints whose sizes are never sent: those that
                            carry credentials or personal text (a login, a note's edit)

Sizes are rounded up to a power of two by default: an exact request size on a login is the
password's length, on an edit the note's, and an exact page size can tell one user's pages from
another's; a power of two still shows what operators look for (a page that grew tenfold, a
flood of large bodies). docs/metrics.md, "Sizes", says which to choose.

Like the client, the extension never raises into the application: a failure inside a hook is
logged once and the request goes on.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app, request
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Rule

from statsd_metrics.binding import ClientBinding
from statsd_metrics.client import Client, ConfigError
from statsd_metrics.default import ENVIRONMENT, configured_options, options_from_environment
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
    "STATSD_METRICS_SIZES": "buckets",
    "STATSD_METRICS_SIZE_EXCLUDE_ENDPOINTS": (),
}  # fmt: skip
# Per-request state, kept in the WSGI environ (it lives exactly as long as the request).
_ROUTE = "statsd_metrics.route"  # the request's _Route, set as Flask preprocesses it
_RAISED = "statsd_metrics.raised"  # the first exception raised while serving it
_CONTENT_LENGTH = ("Content-Length", "content-length")


class _Route:
    """One route's metric names, built once: a request only looks them up."""

    __slots__ = ("base", "excluded", "in_flight", "latency", "request_bytes", "response_bytes",
                 "rule", "statuses")  # fmt: skip

    def __init__(self, client: Client | None, rule: Rule | None, key: str, excluded: bool,
                 sizes: bool = True):  # fmt: skip
        self.rule = rule  # kept alive: routes are looked up by id(rule)
        self.excluded = excluded
        self.base = f"http.{key}"
        self.latency = f"{self.base}.latency"
        self.request_bytes = f"{self.base}.request_bytes" if sizes else ""
        self.response_bytes = f"{self.base}.response_bytes" if sizes else ""
        self.in_flight = SharedGauge(client, f"{self.base}.in_flight")
        self.statuses: dict[str, str] = {}  # "404" -> its counter's name

    def status(self, code: str) -> str:
        name = self.statuses.get(code)
        if name is None:
            name = self.statuses[code] = f"{self.base}.status.{code[0]}xx.{code}"
        return name


@dataclass(frozen=True)
class Settings:
    key: str
    exclude_endpoints: frozenset[str]
    exclude_rules: frozenset[str]
    unmatched: str
    sizes: str = "buckets"
    size_exclude_endpoints: frozenset[str] = frozenset()

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        """Checked at start-up: a bad setting is an error now, not odd metrics later."""
        if not isinstance(config["STATSD_METRICS_ENABLED"], bool):
            raise ValueError(_wrong(config, "STATSD_METRICS_ENABLED", "True or False"))
        key = config["STATSD_METRICS_KEY"]
        if key not in ("endpoint", "rule"):
            raise ValueError(_wrong(config, "STATSD_METRICS_KEY", "'endpoint' or 'rule'"))
        if not isinstance(config["STATSD_METRICS_UNMATCHED"], str):
            raise ValueError(_wrong(config, "STATSD_METRICS_UNMATCHED", "a string"))
        return cls(
            key=key,
            exclude_endpoints=_words(config, "STATSD_METRICS_EXCLUDE_ENDPOINTS"),
            exclude_rules=_words(config, "STATSD_METRICS_EXCLUDE_RULES"),
            unmatched=segment(config["STATSD_METRICS_UNMATCHED"], fallback="unmatched"),
            sizes=_sizes(config, "STATSD_METRICS_SIZES"),
            size_exclude_endpoints=_words(config, "STATSD_METRICS_SIZE_EXCLUDE_ENDPOINTS"),
        )


def _sizes(config: Mapping[str, Any], name: str) -> str:
    if config[name] not in ("buckets", "exact", "off"):
        raise ValueError(_wrong(config, name, "'buckets', 'exact' or 'off'"))
    return str(config[name])


def power_of_two(size: int) -> int:
    """The size's bucket: the smallest power of two not below it."""
    return 1 << (size - 1).bit_length() if size > 0 else 0


def _wrong(config: Mapping[str, Any], name: str, expected: str) -> str:
    return f"{name} must be {expected}, not {config[name]!r}"


def _words(config: Mapping[str, Any], name: str) -> frozenset[str]:
    value = config[name]
    if isinstance(value, str):
        return frozenset([value])
    words = list(value) if isinstance(value, Iterable) else [value]
    if all(isinstance(word, str) for word in words):
        return frozenset(words)
    raise ValueError(_wrong(config, name, "a string or a list of strings"))


class AppMetrics(ClientBinding):
    """What the extension keeps per application, in `app.extensions["statsd_metrics"]`."""

    def __init__(self, client: Client | None, settings: Settings):
        super().__init__(client)
        self.settings = settings
        # By id(): rules compare by value and are unhashable; each _Route keeps its rule alive.
        self.routes: dict[int, _Route] = {}
        self._failed = False
        self.size = power_of_two if settings.sizes == "buckets" else int

    def route(self, rule: Rule | None) -> _Route:
        found = self.routes.get(id(rule))
        if found is None:
            found = self.routes[id(rule)] = self._new_route(rule)
        return found

    def _new_route(self, rule: Rule | None) -> _Route:
        s = self.settings
        if rule is None:
            return _Route(self._client, None, s.unmatched, excluded=False, sizes=s.sizes != "off")
        endpoint = rule.endpoint or ""
        blueprint_view = endpoint.rpartition(".")[2]  # a blueprint's "static" is static too
        excluded = (
            endpoint in s.exclude_endpoints
            or ("." in endpoint and blueprint_view in s.exclude_endpoints)
            or rule.rule in s.exclude_rules
        )
        key = segment(endpoint if s.key == "endpoint" else rule.rule, fallback="root")
        sizes = s.sizes != "off" and endpoint not in s.size_exclude_endpoints
        return _Route(self._client, rule, key, excluded, sizes)

    def _hook_failed(self) -> None:
        if not self._failed:
            self._failed = True
            log.exception("statsd_metrics.flask: a request hook failed (logged once)")

    # -- per request: kept small, this runs on every request ---------------------------------
    def wrap_preprocess(self, preprocess: Callable[[], Any]) -> Callable[[], Any]:
        """Around `Flask.preprocess_request`, which runs the before_request hooks once the URL
        is matched: the route is known, the request counts as in flight. Wrapping it, rather
        than adding a hook, runs first whatever the hooks do and skips Flask's per-hook
        dispatch cost."""

        routes = self.routes

        def preprocess_request() -> Any:
            try:
                req = request._get_current_object()  # type: ignore[attr-defined]  # one proxy lookup, not one per attribute
                rule = req.url_rule
                route = routes.get(id(rule)) or self.route(rule)
                if not route.excluded:
                    req.environ[_ROUTE] = route
                    route.in_flight.add(1)
            except Exception:
                self._hook_failed()
            return preprocess()

        return preprocess_request

    def wrap_wsgi(self, wsgi_app: Callable) -> Callable:
        """Around Flask's WSGI app: the clock, the status and the size, with no more hooks."""
        clock = time.perf_counter
        finish = self.finish

        def statsd_metrics_wsgi(environ: dict, start_response: Callable) -> Iterable[bytes]:
            start = clock()
            answer = _Answer(start_response)
            try:
                body = wsgi_app(environ, answer)
            except BaseException as exc:  # propagated out of Flask (debug, testing)
                finish(environ, start, None, (), exc)
                raise
            if _ROUTE in environ:  # else excluded: nothing to do
                finish(environ, start, answer.status, answer.headers, None)
            return body

        return statsd_metrics_wsgi

    def finish(self, environ: dict, start: float, status: str | None, headers: Iterable,
               exc: BaseException | None) -> None:  # fmt: skip
        try:
            route = environ.pop(_ROUTE, None)
            if route is None:
                return  # excluded, or Flask never reached preprocessing
            try:
                client = self.client
                client.timing(route.latency, (time.perf_counter() - start) * 1000.0)
                # No status when the exception propagated out of Flask: the server answers 500.
                code = status[:3] if status else "500"
                client.incr(route.statuses.get(code) or route.status(code))
                size = environ.get("CONTENT_LENGTH")  # as the client sent it (server-dependent)
                if size and size != "0" and _digits(size) and route.request_bytes:
                    client.timing(route.request_bytes, self.size(int(size)))
                for name, value in headers:
                    if name in _CONTENT_LENGTH:
                        if _digits(value) and route.response_bytes:
                            client.timing(route.response_bytes, self.size(int(value)))
                        break
                raised = environ.pop(_RAISED, None)
                if raised is None and exc is not None and not isinstance(exc, HTTPException):
                    raised = exc
                if raised is not None:
                    client.incr(f"{route.base}.exceptions.{segment(type(raised).__name__)}")
            finally:
                route.in_flight.add(-1)  # whatever happened above: a leak would never heal
        except Exception:
            self._hook_failed()

    def wrap_exception_handler(self, handle: Callable[[Exception], Any]) -> Callable:
        """Note each exception before Flask's error handlers see it (they may turn it into an
        ordinary response, and then nothing else would tell)."""

        def handle_user_exception(e: Exception) -> Any:
            if not isinstance(e, HTTPException):
                try:
                    environ = request.environ
                    if _ROUTE in environ:
                        environ.setdefault(_RAISED, e)
                except Exception:
                    self._hook_failed()
            return handle(e)

        return handle_user_exception


def _digits(text: str) -> bool:
    """A plain decimal size: str.isdigit alone takes "²" and "١٢", and int() not all of them."""
    return text.isascii() and text.isdigit()


class _Answer:
    """WSGI start_response that remembers the status and headers Flask answers with."""

    __slots__ = ("headers", "start_response", "status")

    def __init__(self, start_response: Callable):
        self.start_response = start_response
        self.status: str | None = None
        self.headers: Iterable = ()

    def __call__(self, status: str, headers: list, exc_info: Any = None) -> Any:
        self.status, self.headers = status, headers
        if exc_info is None:
            return self.start_response(status, headers)
        return self.start_response(status, headers, exc_info)


def client_from_config(config: Mapping[str, Any]) -> Client | None:
    """A client for the app when its config holds any STATSD_* client setting, else None.

    It starts from the environment and what `configure()` was given (its constant tags above
    all), then the app's settings: one application, one naming scheme, so its requests land
    beside its own metrics on the dashboards (call `configure()` before `init_app`)."""
    options = {option: config[name] for name, option in ENVIRONMENT.items() if name in config}
    if not options:
        return None
    client = Client(**{**options_from_environment(), **configured_options(), **options})
    error = client.config_error
    if error is None:
        return client
    client.close()
    if not isinstance(error, ConfigError):
        raise ValueError(f"the STATSD_* settings: {error}") from error
    name = next((n for n, option in ENVIRONMENT.items() if option == error.option), error.option)
    where = "not set"
    if name in config:
        where = "in app.config"
    elif name in os.environ:
        where = "in the environment"
    raise ValueError(f"{name} ({where}): {error.why}") from error


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
        app.preprocess_request = metrics.wrap_preprocess(app.preprocess_request)  # type: ignore[method-assign]
        app.wsgi_app = metrics.wrap_wsgi(app.wsgi_app)  # type: ignore[method-assign]
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
