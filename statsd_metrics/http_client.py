"""Metrics for calls to external HTTP APIs made with `requests`.

`instrument_session(session, client, service="chpp", endpoint=name_of)` times every call the
session sends and counts how it ended, under `api.<service>.<endpoint>.*`:

* `latency`: the whole call in ms, body and urllib3 retries included;
* `outcome.<outcome>`: `ok` (2xx/3xx), `client_error` (4xx), `rate_limited` (429),
  `server_error` (5xx), `timeout`, `connection_error` or `error`;
* `retries`: the retries urllib3 made inside the call (`Retry` on the adapter);
* `api.<service>.quota.remaining` / `.limit`: the rate-limit headers of the latest answer.

Endpoints are named by the `endpoint` function from the prepared request, never from the URL
itself, which may carry ids or tokens; without one, calls are named by HTTP method. Needs
`requests` (`pip install statsd-metrics[requests]`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import requests

from statsd_metrics.binding import ClientBinding
from statsd_metrics.client import Client
from statsd_metrics.paths import segment

log = logging.getLogger(__name__)
OUTCOMES = (
    "ok",
    "client_error",
    "rate_limited",
    "server_error",
    "timeout",
    "connection_error",
    "error",
)
_MARK = "_statsd_metrics_service"


def by_method(request: requests.PreparedRequest) -> str:
    return (request.method or "other").lower()


def outcome_of(status: int) -> str:
    if status == 429:
        return "rate_limited"
    if status >= 500:
        return "server_error"
    if status >= 400:
        return "client_error"
    return "ok"


def _retries(response: requests.Response) -> int:
    retry = getattr(response.raw, "retries", None)
    return len(getattr(retry, "history", ()) or ())


def _header_int(response: requests.Response, header: str | None) -> int | None:
    value = response.headers.get(header) if header else None
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class SessionMetrics(ClientBinding):
    def __init__(
        self,
        client: Client | None,
        service: str,
        endpoint: Callable[[requests.PreparedRequest], str],
        remaining_header: str | None,
        limit_header: str | None,
    ):
        super().__init__(client)
        self.base = f"api.{segment(service)}"
        self.endpoint = endpoint
        self.remaining_header = remaining_header
        self.limit_header = limit_header
        self._failed = False

    def wrap(self, send: Callable[..., requests.Response]) -> Callable[..., requests.Response]:
        def metered_send(request: requests.PreparedRequest, **kwargs) -> requests.Response:
            start = time.perf_counter()
            try:
                response = send(request, **kwargs)
            except BaseException as exc:
                self.safe_record(request, start, None, exc)
                raise
            self.safe_record(request, start, response, None)
            return response

        metered_send.__wrapped__ = send  # type: ignore[attr-defined]
        return metered_send

    def safe_record(self, *args: Any) -> None:
        """`record`, which must never turn a call's result into an error of ours."""
        try:
            self.record(*args)
        except Exception:
            if not self._failed:
                self._failed = True
                log.exception("statsd_metrics.http_client: recording a call failed (logged once)")

    def record(
        self,
        request: requests.PreparedRequest,
        start: float,
        response: requests.Response | None,
        exc: BaseException | None,
    ) -> None:
        elapsed_ms = (time.perf_counter() - start) * 1000.0
        try:
            name = f"{self.base}.{segment(self.endpoint(request))}"
        except Exception:
            name = f"{self.base}.other"
        client = self.client
        client.timing(f"{name}.latency", elapsed_ms)
        if response is None:
            if isinstance(exc, requests.Timeout):
                outcome = "timeout"
            elif isinstance(exc, requests.exceptions.RetryError):
                outcome = "server_error"  # urllib3 gave up on retryable error answers
            elif isinstance(exc, requests.ConnectionError):
                outcome = "connection_error"
            else:
                outcome = "error"
            client.incr(f"{name}.outcome.{outcome}")
            return
        client.incr(f"{name}.outcome.{outcome_of(response.status_code)}")
        retries = _retries(response)
        if retries:
            client.incr(f"{name}.retries", retries)
        remaining = _header_int(response, self.remaining_header)
        if remaining is not None:
            client.gauge(f"{self.base}.quota.remaining", remaining)
        limit = _header_int(response, self.limit_header)
        if limit is not None:
            client.gauge(f"{self.base}.quota.limit", limit)


def instrument_session(
    session: requests.Session,
    client: Client | None = None,
    *,
    service: str,
    endpoint: Callable[[requests.PreparedRequest], str] = by_method,
    remaining_header: str | None = "X-RateLimit-Remaining",
    limit_header: str | None = "X-RateLimit-Limit",
) -> requests.Session:
    """Meter every call `session` sends; instrumenting a session twice changes nothing."""
    if getattr(session, _MARK, None) is None:
        metrics = SessionMetrics(client, service, endpoint, remaining_header, limit_header)
        session.send = metrics.wrap(session.send)  # type: ignore[method-assign]
        setattr(session, _MARK, service)
    return session
