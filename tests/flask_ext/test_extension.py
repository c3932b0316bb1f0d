"""The Flask extension, asserted on what the client would put on the wire (the recorder)."""

import logging
import re

import pytest
from flask import Blueprint, Flask, Response, abort, redirect, request, stream_with_context

from statsd_metrics import Client, shared_gauge
from statsd_metrics.flask import EXTENSION, StatsdMetrics, power_of_two

NAME = re.compile(
    r"^app\.http\.[A-Za-z0-9_-]+\."
    r"(latency|in_flight|request_bytes|response_bytes|status\.[1-5]xx\.\d{3}|exceptions\.[A-Za-z0-9_-]+)$"
)


class Teapot(Exception):
    pass


def make_app(tmp_path, **config) -> Flask:
    static = tmp_path / "static"
    static.mkdir(exist_ok=True)
    (static / "site.css").write_text("body {}")
    app = Flask("shop", static_folder=str(static))
    app.config.update(config)

    @app.get("/items/<int:item_id>")
    def item(item_id: int):
        return {"id": item_id}

    @app.post("/upload")
    def upload():
        return {"size": len(request.get_data())}

    @app.get("/boom")
    def boom():
        raise KeyError("secret detail")

    @app.get("/teapot")
    def teapot():
        raise Teapot

    @app.errorhandler(Teapot)
    def handle_teapot(exc):
        return "short and stout", 418

    @app.get("/missing")
    def missing():
        abort(404)

    @app.get("/stream")
    def stream():
        return Response(stream_with_context(iter(["a", "b"])))

    @app.get("/health")
    def health():
        return "ok"

    auth = Blueprint("auth", "auth", static_folder=str(static), static_url_path="/auth-static")

    @auth.get("/login")
    def login():
        return "login"

    app.register_blueprint(auth)
    return app


@pytest.fixture
def client():
    with Client(prefix="app") as c:
        yield c


@pytest.fixture
def app(tmp_path, client):
    app = make_app(tmp_path)
    StatsdMetrics(app, client=client)
    return app


def test_a_request_sends_latency_status_and_response_size(app, statsd_recorder):
    response = app.test_client().get("/items/17")
    assert response.status_code == 200
    latency = statsd_recorder.assert_timing("app.http.item.latency")
    assert 0 <= latency.value < 1000
    statsd_recorder.assert_incr("app.http.item.status.2xx.200")
    size = statsd_recorder.assert_timing("app.http.item.response_bytes").value
    assert size == power_of_two(len(response.data))  # a bucket by default: see test_sizes.py
    statsd_recorder.assert_not_emitted("app.http.item.request_bytes")  # a GET has no body


def test_routes_not_urls_key_the_metrics(app, statsd_recorder):
    web = app.test_client()
    for item_id in (1717, 1818, 1919):
        web.get(f"/items/{item_id}?token=abc")
    assert statsd_recorder.total("app.http.item.status.2xx.200") == 3
    assert len(statsd_recorder.filter("app.http.item.latency")) == 3
    for name in statsd_recorder.names():
        assert not re.search(r"1717|1818|1919|token|abc", name)


def test_unknown_urls_fold_into_one_bucket(app, statsd_recorder):
    web = app.test_client()
    for path in ("/wp-login.php", "/a/b/c?x=1", "/.env", "/items/not-a-number"):
        assert web.get(path).status_code == 404
    assert web.post("/items/3").status_code == 405  # a known URL, but no rule for POST
    assert statsd_recorder.total("app.http.unmatched.status.4xx.404") == 4
    assert statsd_recorder.total("app.http.unmatched.status.4xx.405") == 1
    assert {n.split(".")[2] for n in statsd_recorder.names()} == {"unmatched"}


def test_health_and_static_routes_are_left_out(app, statsd_recorder):
    web = app.test_client()
    assert web.get("/health").status_code == 200
    assert web.get("/static/site.css").status_code == 200
    assert web.get("/auth-static/site.css").status_code == 200  # a blueprint's static
    assert statsd_recorder.metrics == []


def test_exclusions_are_configurable(tmp_path, client, statsd_recorder):
    app = make_app(tmp_path, STATSD_METRICS_EXCLUDE_ENDPOINTS=["item"],
                   STATSD_METRICS_EXCLUDE_RULES="/upload")  # fmt: skip
    StatsdMetrics(app, client=client)
    web = app.test_client()
    web.get("/items/1")
    web.post("/upload", data=b"x")
    web.get("/health")  # no longer excluded
    assert {n.split(".")[2] for n in statsd_recorder.names()} == {"health"}


def test_exceptions_are_counted_by_type_whoever_handles_them(app, statsd_recorder):
    web = app.test_client()
    assert web.get("/boom").status_code == 500
    statsd_recorder.assert_incr("app.http.boom.exceptions.KeyError")
    statsd_recorder.assert_incr("app.http.boom.status.5xx.500")
    assert web.get("/teapot").status_code == 418  # handled by an error handler
    statsd_recorder.assert_incr("app.http.teapot.exceptions.Teapot")
    statsd_recorder.assert_incr("app.http.teapot.status.4xx.418")
    assert web.get("/missing").status_code == 404  # abort(): a status, not an exception
    statsd_recorder.assert_incr("app.http.missing.status.4xx.404")
    assert not [n for n in statsd_recorder.names() if "missing.exceptions" in n]
    assert not [n for n in statsd_recorder.names() if "secret" in n]


def test_exception_propagating_out_of_flask_is_still_recorded(app, statsd_recorder):
    app.testing = True  # exceptions propagate to the caller; after_request never runs
    with pytest.raises(KeyError):
        app.test_client().get("/boom")
    statsd_recorder.assert_incr("app.http.boom.status.5xx.500")
    assert statsd_recorder.total("app.http.boom.exceptions.KeyError") == 1
    assert (
        app.extensions[EXTENSION].route(next(app.url_map.iter_rules("boom"))).in_flight.level == 0
    )


def test_request_body_size(app, statsd_recorder):
    app.test_client().post("/upload", data=b"x" * 123)
    assert statsd_recorder.assert_timing("app.http.upload.request_bytes").value == 128  # bucket


def test_streamed_response_has_no_size(app, statsd_recorder):
    assert app.test_client().get("/stream").data == b"ab"
    statsd_recorder.assert_incr("app.http.stream.status.2xx.200")
    statsd_recorder.assert_not_emitted("app.http.stream.response_bytes")


def test_blueprint_endpoint_is_one_path_segment(app, statsd_recorder):
    app.test_client().get("/login")
    statsd_recorder.assert_incr("app.http.auth_login.status.2xx.200")


def test_rule_templates_can_key_instead_of_endpoints(tmp_path, client, statsd_recorder):
    app = make_app(tmp_path, STATSD_METRICS_KEY="rule")
    StatsdMetrics(app, client=client)
    app.test_client().get("/items/5")
    statsd_recorder.assert_incr("app.http.items_int_item_id.status.2xx.200")


def test_every_name_fits_the_documented_scheme(app, statsd_recorder):
    web = app.test_client()
    for path in ("/items/1", "/boom", "/teapot", "/missing", "/nope", "/login", "/stream"):
        web.get(path)
    web.post("/upload", data=b"abc")
    names = statsd_recorder.names()
    assert len(names) > 20
    assert [n for n in names if not NAME.match(n)] == []


def test_a_before_request_hook_that_answers_early_is_still_measured(
    tmp_path, client, statsd_recorder
):
    app = make_app(tmp_path)

    @app.before_request
    def login_wall():
        if request.path.startswith("/items"):
            return redirect("/login")
        return None

    StatsdMetrics(app, client=client)  # registered after the app's own hook
    assert app.test_client().get("/items/1").status_code == 302
    statsd_recorder.assert_incr("app.http.item.status.3xx.302")
    statsd_recorder.assert_timing("app.http.item.latency")


def test_in_flight_counts_requests_being_served(tmp_path, client, statsd_recorder):
    app = make_app(tmp_path)
    seen = []

    @app.get("/peek")
    def peek():
        seen.append(app.extensions[EXTENSION].route(request.url_rule).in_flight.level)
        shared_gauge.report_all()  # as the reporter thread would, while the request runs
        return "ok"

    StatsdMetrics(app, client=client)
    app.test_client().get("/peek")
    assert seen == [1]
    shared_gauge.report_all()  # and after it
    sent = [(m.value, m.delta) for m in statsd_recorder.filter("app.http.peek.in_flight")]
    assert sent == [(1, True), (-1, True)]


def test_app_config_builds_the_apps_own_client(tmp_path, statsd_recorder, monkeypatch):
    monkeypatch.delenv("STATSD_PREFIX", raising=False)
    app = make_app(tmp_path, STATSD_PREFIX="cfgapp", STATSD_PORT=9)
    ext = StatsdMetrics(app)
    app.test_client().get("/items/1")
    statsd_recorder.assert_incr("cfgapp.http.item.status.2xx.200")
    assert ext.client is app.extensions[EXTENSION].client
    ext.client.close()


def test_the_apps_own_client_keeps_configures_tags_one_naming_scheme(
    tmp_path, statsd_recorder, monkeypatch
):
    # Before: with STATSD_PREFIX in app.config the extension built a client from the
    # environment alone, so configure()'s constant tags were missing from the request metrics
    # and one application wrote two naming schemes.
    import statsd_metrics

    monkeypatch.delenv("STATSD_PREFIX", raising=False)
    monkeypatch.delenv("STATSD_TAGS", raising=False)
    statsd_metrics.configure(prefix="teamapp", tags={"env": "prod", "region": "eu"}, port=9)
    try:
        app = make_app(tmp_path, STATSD_PREFIX="teamapp", STATSD_PORT=9)
        ext = StatsdMetrics(app)
        app.test_client().get("/items/1")
        statsd_metrics.incr("features.squad_view")
        own = statsd_recorder.assert_incr("teamapp.http.item.status.2xx.200")
        app_metric = statsd_recorder.assert_incr("teamapp.features.squad_view")
        assert own.tags == app_metric.tags == {"env": "prod", "region": "eu"}
        ext.client.close()
    finally:
        statsd_metrics.configure(prefix=None)


def test_constant_tags_from_the_flask_config(tmp_path, statsd_recorder, monkeypatch):
    monkeypatch.delenv("STATSD_TAGS", raising=False)
    app = make_app(tmp_path, STATSD_PREFIX="cfgapp", STATSD_PORT=9, STATSD_TAGS="env:prod")
    ext = StatsdMetrics(app)
    app.test_client().get("/items/1")
    assert statsd_recorder.assert_incr("cfgapp.http.item.status.2xx.200").tags == {"env": "prod"}
    ext.client.close()


def test_without_client_settings_the_default_client_is_used(tmp_path, statsd_recorder, monkeypatch):
    import statsd_metrics

    monkeypatch.delenv("STATSD_PREFIX", raising=False)
    app = make_app(tmp_path)
    metrics = StatsdMetrics()
    metrics.init_app(app)
    previous = statsd_metrics.get_client()
    statsd_metrics.configure(prefix="late", port=9)  # configured after init_app: still used
    try:
        app.test_client().get("/items/1")
        statsd_recorder.assert_incr("late.http.item.status.2xx.200")
        with app.app_context():
            assert metrics.client is statsd_metrics.get_client()
    finally:
        statsd_metrics.configure(prefix=None)
    assert previous is not statsd_metrics.get_client()


def test_disabled_extension_sends_nothing(tmp_path, client, statsd_recorder):
    app = make_app(tmp_path, STATSD_METRICS_ENABLED=False)
    StatsdMetrics(app, client=client)
    app.test_client().get("/items/1")
    assert statsd_recorder.metrics == []


def test_bad_configuration_is_refused_at_start(tmp_path, client):
    with pytest.raises(ValueError, match="STATSD_METRICS_KEY"):
        StatsdMetrics(make_app(tmp_path, STATSD_METRICS_KEY="url"), client=client)


def test_uninitialised_extension_says_so():
    with pytest.raises(RuntimeError, match="not initialised"):
        StatsdMetrics().client  # noqa: B018


def test_a_failing_hook_never_reaches_the_app(app, statsd_recorder, monkeypatch, caplog):
    def broken(rule):
        raise RuntimeError("bug in metrics")

    monkeypatch.setattr(app.extensions[EXTENSION], "route", broken)
    with caplog.at_level(logging.ERROR, logger="statsd_metrics.flask"):
        assert app.test_client().get("/items/1").status_code == 200
        assert app.test_client().get("/items/2").status_code == 200
    assert caplog.text.count("request hook failed") == 1


def test_identifiers_in_a_request_never_reach_the_wire(app, statsd_recorder):
    web = app.test_client()
    web.set_cookie("session", "user-9041")
    web.get("/items/9041?email=ana.lima%40example.org&uid=9041",
            headers={"X-Forwarded-For": "203.0.113.41", "X-User": "ana.lima@example.org"},
            environ_base={"REMOTE_ADDR": "198.51.100.23"})  # fmt: skip
    web.post("/upload", data=b"ana.lima@example.org 9041",
             environ_base={"REMOTE_ADDR": "198.51.100.23"})  # fmt: skip
    web.get("/users/9041/ana.lima@example.org")  # no such route: the unmatched bucket
    assert len(statsd_recorder.metrics) >= 8
    wire = "\n".join(f"{m.name}:{m.value}" for m in statsd_recorder.metrics)
    for identifier in ("9041", "ana", "lima", "example", "203.0.113", "198.51.100", "user-"):
        assert identifier not in wire
