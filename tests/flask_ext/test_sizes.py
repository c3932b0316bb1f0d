"""Request and response sizes: coarse buckets by default, exact or off when configured, never
on the endpoints that carry credentials or personal text."""

import pytest
from flask import Flask, request

from statsd_metrics import Client
from statsd_metrics.flask import StatsdMetrics, power_of_two

CLIENT = Client(prefix="app", port=9)  # the recorder captures its lines


def make_app(**config) -> Flask:
    app = Flask("sizes")
    app.config.update(config)

    @app.post("/login")
    def login():
        return "welcome " + request.form.get("username", "")

    @app.post("/notes")
    def notes():
        return {"length": len(request.get_data())}

    StatsdMetrics(app, client=CLIENT)
    return app


def sizes(recorder, endpoint: str) -> dict[str, list[float]]:
    return {
        kind: [m.value for m in recorder.filter(f"app.http.{endpoint}.{kind}_bytes", "ms")]
        for kind in ("request", "response")
    }


@pytest.mark.parametrize(
    ("size", "bucket"), [(0, 0), (1, 1), (2, 2), (3, 4), (1000, 1024), (1024, 1024), (1025, 2048)]
)
def test_power_of_two_is_the_smallest_not_below(size, bucket):
    assert power_of_two(size) == bucket


def test_by_default_a_password_length_does_not_show(statsd_recorder):
    web = make_app().test_client()
    for length in (11, 20, 41):  # `username=ana&password=` and 11 to 41 characters
        web.post("/login", data={"username": "ana", "password": "p" * length})
    seen = sizes(statsd_recorder, "login")
    assert seen["request"] == [64.0] * 3  # 33 to 63 bytes: one bucket


def test_excluded_endpoints_send_no_size_at_all(statsd_recorder):
    app = make_app(STATSD_METRICS_SIZE_EXCLUDE_ENDPOINTS=("login", "notes"))
    web = app.test_client()
    web.post("/login", data={"username": "ana", "password": "secret"})
    web.post("/notes", data=b"my private note")
    assert sizes(statsd_recorder, "login") == {"request": [], "response": []}
    assert sizes(statsd_recorder, "notes") == {"request": [], "response": []}
    statsd_recorder.assert_incr("app.http.login.status.2xx.200")  # the rest is still measured


def test_exact_sizes_when_asked_and_none_when_off(statsd_recorder):
    make_app(STATSD_METRICS_SIZES="exact").test_client().post("/notes", data=b"x" * 123)
    assert sizes(statsd_recorder, "notes")["request"] == [123]
    statsd_recorder.clear()
    make_app(STATSD_METRICS_SIZES="off").test_client().post("/notes", data=b"x" * 123)
    assert sizes(statsd_recorder, "notes") == {"request": [], "response": []}


def test_an_unknown_size_mode_is_refused_at_start():
    with pytest.raises(ValueError, match="STATSD_METRICS_SIZES"):
        make_app(STATSD_METRICS_SIZES="rounded")
