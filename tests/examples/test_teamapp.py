"""The example app's own behaviour and the metrics each action sends (recorder)."""

import datetime as dt
import re
import time

import pytest
from freezegun import freeze_time

from statsd_metrics.privacy import UserHasher


def login(web, n=1, password=None, **kwargs):
    return web.post("/login", data={"username": f"manager{n}", "password": password or f"pass-{n}"},
                    **kwargs)  # fmt: skip


def test_login_counts_success_and_the_user_as_active(make_app, statsd_recorder):
    app = make_app()
    web = app.test_client()
    response = login(web, 1)
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/squad")
    statsd_recorder.assert_incr("teamapp.security.login.succeeded")
    web.get("/squad")
    member = statsd_recorder.filter("teamapp.users.active", "s")[0].value
    assert member == UserHasher("test-secret").pseudonym(1)
    statsd_recorder.assert_incr("teamapp.users.daily_active")
    statsd_recorder.assert_incr("teamapp.features.squad_view")
    statsd_recorder.assert_incr("teamapp.http.login.status.3xx.302")
    statsd_recorder.assert_incr("teamapp.http.squad.status.2xx.200")


def test_pages_need_a_login(make_app, statsd_recorder):
    web = make_app().test_client()
    assert web.get("/squad").status_code == 302
    assert web.get("/training").status_code == 302
    assert web.post("/sync").status_code == 302
    assert web.get("/login").status_code == 200
    statsd_recorder.assert_not_emitted("teamapp.users.active")


def test_opted_out_manager_is_not_counted_as_active(make_app, statsd_recorder):
    web = make_app().test_client()
    login(web, 7)  # every seventh demo manager opted out
    web.get("/squad")
    statsd_recorder.assert_incr("teamapp.features.squad_view")
    statsd_recorder.assert_not_emitted("teamapp.users.active")
    statsd_recorder.assert_not_emitted("teamapp.users.daily_active")


def test_failed_logins_lock_the_account_until_it_expires(make_app, statsd_recorder):
    with freeze_time("2026-06-01 10:00:00") as frozen:
        web = make_app(LOCKOUT_ATTEMPTS=3, LOCKOUT_SECONDS=60).test_client()
        for _ in range(3):
            assert login(web, 2, password="nope").status_code == 401
        assert statsd_recorder.total("teamapp.security.login.failed") == 3
        statsd_recorder.assert_incr("teamapp.security.lockouts")
        assert login(web, 2).status_code == 403  # right password, locked account
        statsd_recorder.assert_incr("teamapp.security.login.blocked")
        frozen.tick(dt.timedelta(seconds=61))
        assert login(web, 2).status_code == 302
    assert login(web, 99, password="x").status_code == 401  # unknown user: a failure too
    assert statsd_recorder.total("teamapp.security.login.failed") == 4


def test_login_attempts_are_rate_limited_per_client_address(make_app, statsd_recorder):
    app = make_app(RATE_LIMITS={"login": (2, 60.0), "sync": (1, 1.0)}, TRUST_PROXY=True)
    web = app.test_client()
    behind_proxy = {"X-Forwarded-For": "203.0.113.77"}
    assert login(web, 1, password="x", headers=behind_proxy).status_code == 401
    assert login(web, 1, password="x", headers=behind_proxy).status_code == 401
    assert login(web, 1, headers=behind_proxy).status_code == 429
    assert login(web, 1, headers={"X-Forwarded-For": "198.51.100.9"}).status_code == 302
    statsd_recorder.assert_incr("teamapp.security.rate_limited.login")
    assert statsd_recorder.total("teamapp.http.login.status.4xx.429") == 1
    wire = " ".join(f"{m.name} {m.value}" for m in statsd_recorder.metrics)
    assert "203.0.113" not in wire
    assert "198.51.100" not in wire


def test_sync_stores_players_and_counts_updates_and_api_calls(make_app, statsd_recorder):
    app = make_app()
    web = app.test_client()
    login(web, 1)
    assert web.post("/sync").status_code == 302
    squad = web.get("/squad").get_data(as_text=True)
    players = squad.count('href="/players/')
    assert 16 <= players <= 22
    statsd_recorder.assert_incr("teamapp.events.player_updates", players)
    statsd_recorder.assert_incr("teamapp.events.syncs_completed")
    statsd_recorder.assert_incr("teamapp.features.sync")
    statsd_recorder.assert_timing("teamapp.api.chpp.players.latency")
    statsd_recorder.assert_incr("teamapp.api.chpp.players.outcome.ok")
    assert statsd_recorder.filter("teamapp.api.chpp.quota.remaining", "g")
    statsd_recorder.assert_timing("teamapp.db.teamapp.query.insert")
    statsd_recorder.assert_timing("teamapp.db.teamapp.query.select")
    # A second sync sends only what changed in the game meanwhile.
    statsd_recorder.clear()
    web.post("/sync")
    updates = statsd_recorder.total("teamapp.events.player_updates")
    assert 0 <= updates < players


def test_sync_is_rate_limited_per_manager(make_app, statsd_recorder):
    web = make_app(RATE_LIMITS={"login": (100, 60.0), "sync": (1, 60.0)}).test_client()
    login(web, 1)
    assert web.post("/sync").status_code == 302
    assert web.post("/sync").status_code == 429
    statsd_recorder.assert_incr("teamapp.security.rate_limited.sync")
    statsd_recorder.assert_incr("teamapp.http.sync.status.4xx.429")


def test_chpp_rate_limit_and_outage_are_visible(make_app, chpp, statsd_recorder):
    web = make_app().test_client()
    login(web, 1)
    chpp.settings.rate_limit = 0  # quota used up
    assert web.post("/sync").status_code == 503
    statsd_recorder.assert_incr("teamapp.api.chpp.players.outcome.rate_limited")
    statsd_recorder.assert_gauge("teamapp.api.chpp.quota.remaining", 0)
    chpp.settings.rate_limit = 1000
    chpp.windows.clear()
    chpp.start_burst(60, error_rate=1.0)
    codes = {web.post("/sync").status_code for _ in range(12)}
    assert codes == {500, 502}  # the simulator is seeded: both kinds of failure occur
    statsd_recorder.assert_incr("teamapp.api.chpp.players.outcome.server_error")
    # A truncated body: the app's unguarded json() raises, and the extension counts it.
    statsd_recorder.assert_incr("teamapp.http.sync.exceptions.JSONDecodeError")


def test_player_pages_and_edits(make_app, statsd_recorder):
    web = make_app().test_client()
    login(web, 1)
    web.post("/sync")
    player = "/players/100101"  # team 1001's second player
    assert web.get(player).status_code == 200
    assert web.post(player, data={"position": "keeper", "notes": "safe hands"}).status_code == 302
    assert "safe hands" in web.get(player).get_data(as_text=True)
    statsd_recorder.assert_incr("teamapp.events.player_edits")
    statsd_recorder.assert_incr("teamapp.features.player_edit")
    assert web.post(player, data={"position": "libero"}).status_code == 400
    assert web.get("/players/100201").status_code == 404  # another manager's player
    assert statsd_recorder.total("teamapp.http.player.status.2xx.200") == 2


def test_training_recommendations_made_once_and_accepted_once(make_app, statsd_recorder):
    web = make_app().test_client()
    login(web, 1)
    assert "Sync your squad first" in web.get("/training").get_data(as_text=True)
    web.post("/sync")
    page = web.get("/training").get_data(as_text=True)
    assert "Recommended this week" in page
    web.get("/training")
    statsd_recorder.assert_incr("teamapp.events.training_recommendations_made")
    assert statsd_recorder.total("teamapp.events.training_recommendations_made") == 1
    accept = re.search(r'action="(/training/\d+/accept)"', page).group(1)
    assert web.post(accept).status_code == 302
    assert web.post(accept).status_code == 302
    assert statsd_recorder.total("teamapp.events.training_recommendations_accepted") == 1
    assert "Accepted." in web.get("/training").get_data(as_text=True)


@pytest.mark.parametrize("path", ["/wp-login.php", "/admin/.env", "/players/abc"])
def test_unknown_urls_and_health(make_app, statsd_recorder, path):
    web = make_app().test_client()
    assert web.get(path).status_code == 404
    assert web.get("/health").status_code == 200
    assert web.get("/static/style.css").status_code == 200
    assert {n.split(".")[2] for n in statsd_recorder.names() if ".http." in n} == {"unmatched"}


def test_logout_and_index(make_app):
    web = make_app().test_client()
    assert web.get("/").headers["Location"].endswith("/login")
    login(web, 1)
    assert web.get("/").headers["Location"].endswith("/squad")
    assert web.post("/logout").status_code == 302
    assert web.get("/squad").status_code == 302


def test_a_rate_limited_chpp_call_is_not_retried(make_app, chpp, statsd_recorder):
    # urllib3 retries a 429 with Retry-After by default, sleeping as long as the API asks.
    web = make_app(CHPP_RETRIES=2).test_client()
    login(web, 1)
    chpp.settings.rate_limit = 0
    started = time.monotonic()
    assert web.post("/sync").status_code == 503
    assert time.monotonic() - started < 3  # the API asked for 10 s
    statsd_recorder.assert_incr("teamapp.api.chpp.players.outcome.rate_limited")
    statsd_recorder.assert_not_emitted("teamapp.api.chpp.players.retries")
