"""External API calls through a `requests` session: time, outcome, retries, quota."""

import socket
import threading
import time

import pytest
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from statsd_metrics.http_client import instrument_session, outcome_of


class Api:
    """A tiny HTTP API on loopback whose answers the test scripts."""

    def __init__(self):
        self.script: list[tuple[int, dict]] = []
        self.calls = 0

    def __call__(self, environ, start_response):
        request = Request(environ)
        self.calls += 1
        if request.path == "/slow":
            time.sleep(0.5)
        status, headers = self.script.pop(0) if self.script else (200, {})
        return Response("{}", status, headers)(environ, start_response)


@pytest.fixture
def api():
    app = Api()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    app.url = f"http://127.0.0.1:{server.server_port}"
    yield app
    server.shutdown()
    server.server_close()
    thread.join(5)


def by_path(request):
    return request.path_url.split("?")[0].strip("/").split("/")[0] or "root"


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(200, "ok"), (302, "ok"), (404, "client_error"), (429, "rate_limited"), (503, "server_error")],
)
def test_outcome_of(status, outcome):
    assert outcome_of(status) == outcome


def test_calls_are_timed_and_counted_by_named_endpoint(api, client, statsd_recorder):
    session = instrument_session(requests.Session(), client, service="chpp", endpoint=by_path)
    api.script = [(200, {"X-RateLimit-Remaining": "41", "X-RateLimit-Limit": "60"}),
                  (429, {"X-RateLimit-Remaining": "0", "Retry-After": "5"}),
                  (404, {})]  # fmt: skip
    session.get(api.url + "/players?teamID=4711&token=s3cr3t")
    session.get(api.url + "/players?teamID=4712")
    session.get(api.url + "/matches")
    assert len(statsd_recorder.filter("app.api.chpp.players.latency")) == 2
    statsd_recorder.assert_incr("app.api.chpp.players.outcome.ok")
    statsd_recorder.assert_incr("app.api.chpp.players.outcome.rate_limited")
    statsd_recorder.assert_incr("app.api.chpp.matches.outcome.client_error")
    statsd_recorder.assert_gauge("app.api.chpp.quota.remaining", 41)
    statsd_recorder.assert_gauge("app.api.chpp.quota.remaining", 0)
    statsd_recorder.assert_gauge("app.api.chpp.quota.limit", 60)
    for name in statsd_recorder.names():
        assert "4711" not in name
        assert "s3cr3t" not in name
        assert "127" not in name


def test_retries_inside_the_adapter_are_counted(api, client, statsd_recorder):
    session = requests.Session()
    retry = Retry(total=3, backoff_factor=0, status_forcelist=(503,), raise_on_status=False)
    session.mount("http://", HTTPAdapter(max_retries=retry))
    instrument_session(session, client, service="chpp", endpoint=by_path)
    api.script = [(503, {}), (503, {}), (200, {})]
    assert session.get(api.url + "/players").status_code == 200
    assert api.calls == 3
    statsd_recorder.assert_incr("app.api.chpp.players.retries", 2)
    statsd_recorder.assert_incr("app.api.chpp.players.outcome.ok")
    assert len(statsd_recorder.filter("app.api.chpp.players.latency")) == 1  # one call


def test_timeouts_and_refused_connections_are_outcomes_and_still_raise(
    api, client, statsd_recorder
):
    session = instrument_session(requests.Session(), client, service="chpp", endpoint=by_path)
    with pytest.raises(requests.Timeout):
        session.get(api.url + "/slow", timeout=0.1)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    with pytest.raises(requests.ConnectionError):
        session.get(f"http://127.0.0.1:{closed}/players", timeout=2)
    statsd_recorder.assert_incr("app.api.chpp.slow.outcome.timeout")
    statsd_recorder.assert_incr("app.api.chpp.players.outcome.connection_error")
    statsd_recorder.assert_timing("app.api.chpp.slow.latency")


def test_default_names_by_method_and_a_broken_namer_falls_back(api, client, statsd_recorder):
    session = instrument_session(requests.Session(), client, service="weather")
    session.post(api.url + "/users/17/profile")
    statsd_recorder.assert_incr("app.api.weather.post.outcome.ok")

    def broken(request):
        raise ValueError("bug")

    other = instrument_session(requests.Session(), client, service="maps", endpoint=broken)
    other.get(api.url + "/x")
    statsd_recorder.assert_incr("app.api.maps.other.outcome.ok")


def test_bad_quota_headers_are_ignored_and_instrumenting_twice_changes_nothing(
    api, client, statsd_recorder
):
    session = requests.Session()
    instrument_session(session, client, service="chpp", endpoint=by_path)
    instrument_session(session, client, service="chpp", endpoint=by_path)
    api.script = [(200, {"X-RateLimit-Remaining": "lots"})]
    session.get(api.url + "/players")
    assert len(statsd_recorder.filter("app.api.chpp.players.latency")) == 1
    statsd_recorder.assert_not_emitted("app.api.chpp.quota.remaining")


def test_a_failure_while_recording_never_reaches_the_caller(api, client, monkeypatch, caplog):
    from statsd_metrics.http_client import SessionMetrics

    def broken(self, *args):
        raise RuntimeError("bug in metrics")

    monkeypatch.setattr(SessionMetrics, "record", broken)
    session = instrument_session(requests.Session(), client, service="chpp", endpoint=by_path)
    assert session.get(api.url + "/players").status_code == 200
    assert session.get(api.url + "/players").status_code == 200
    assert caplog.text.count("recording a call failed") == 1
