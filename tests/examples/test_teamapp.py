"""The example app's own behaviour and the metrics each action sends (recorder)."""

import datetime as dt
import re
import time

import pytest
from freezegun import freeze_time

from statsd_metrics.privacy import UserHasher
from tests.examples.conftest import SECRET


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
    assert member == UserHasher(SECRET).pseudonym(1)
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


def test_failed_logins_lock_the_account_for_that_address_until_it_expires(
    make_app, statsd_recorder
):
    attacker = {"X-Forwarded-For": "203.0.113.66"}
    owner = {"X-Forwarded-For": "198.51.100.20"}
    with freeze_time("2026-06-01 10:00:00") as frozen:
        web = make_app(LOCKOUT_ATTEMPTS=3, LOCKOUT_SECONDS=60, TRUSTED_PROXIES=1).test_client()
        for _ in range(3):
            assert login(web, 2, password="nope", headers=attacker).status_code == 401
        assert statsd_recorder.total("teamapp.security.login.failed") == 3
        statsd_recorder.assert_incr("teamapp.security.lockouts")
        assert login(web, 2, headers=attacker).status_code == 403  # right password, locked
        statsd_recorder.assert_incr("teamapp.security.login.blocked")
        # The lock is the attacker's address's, not the account's: its owner logs in.
        assert login(web, 2, headers=owner).status_code == 302
        frozen.tick(dt.timedelta(seconds=61))
        assert login(web, 2, headers=attacker).status_code == 302
    assert login(web, 99, password="x").status_code == 401  # unknown user: a failure too
    assert statsd_recorder.total("teamapp.security.login.failed") == 4


def test_no_one_can_lock_every_account_with_wrong_passwords(make_app, statsd_recorder):
    web = make_app(LOCKOUT_ATTEMPTS=3, TRUSTED_PROXIES=1).test_client()
    attacker = {"X-Forwarded-For": "203.0.113.66"}
    for n in (1, 2, 3):
        for _ in range(3):
            login(web, n, password="wrong", headers=attacker)
    assert statsd_recorder.total("teamapp.security.lockouts") == 3
    for n in (1, 2, 3):
        assert login(web, n, headers={"X-Forwarded-For": f"198.51.100.{n}"}).status_code == 302
        web.post("/logout")
    assert login(web, 1, headers=attacker).status_code == 403


def test_proxy_headers_are_ignored_unless_proxies_are_trusted(make_app, statsd_recorder):
    app = make_app(RATE_LIMITS={"login": (2, 60.0), "sync": (1, 1.0)})
    web = app.test_client()
    codes = [
        login(web, 1, password="x", headers={"X-Forwarded-For": f"203.0.113.{n}"}).status_code
        for n in range(6)
    ]
    assert codes == [401, 401, 429, 429, 429, 429]  # one client, whatever the header says
    assert statsd_recorder.total("teamapp.security.proxy_headers_ignored") == 6
    assert statsd_recorder.total("teamapp.security.rate_limited.login") == 4


def test_trusted_proxies_count_hops_from_the_right(make_app, statsd_recorder):
    app = make_app(RATE_LIMITS={"login": (1, 60.0), "sync": (1, 1.0)}, TRUSTED_PROXIES=1)
    web = app.test_client()
    # The client wrote the first address; the trusted proxy appended the second.
    spoofed = {"X-Forwarded-For": "192.0.2.1, 198.51.100.7"}
    assert login(web, 1, password="x", headers=spoofed).status_code == 401
    spoofed = {"X-Forwarded-For": "192.0.2.2, 198.51.100.7"}
    assert login(web, 1, password="x", headers=spoofed).status_code == 429  # same real client
    assert statsd_recorder.total("teamapp.security.proxy_headers_ignored") == 2


@pytest.mark.parametrize("hops", [-1, "1", 1.5])
def test_a_bad_number_of_proxies_is_refused_at_start(make_app, hops):
    with pytest.raises(ValueError, match="TRUSTED_PROXIES"):
        make_app(TRUSTED_PROXIES=hops)


@pytest.mark.parametrize(
    "path", ["/players/98765432198765432198765", "/players/9223372036854775808",
             "/training/99999999999999999999999999/accept", "/players/\u0661\u0662"],
)  # fmt: skip
def test_ids_that_cannot_be_ids_are_404_and_counted(make_app, statsd_recorder, path):
    web = make_app().test_client()
    login(web, 1)
    response = web.post(path) if path.endswith("accept") else web.get(path)
    assert response.status_code == 404
    statsd_recorder.assert_incr("teamapp.security.invalid_ids")
    assert not statsd_recorder.filter(type="c", name="teamapp.http.player.status.5xx.500")


def test_login_attempts_are_rate_limited_per_client_address(make_app, statsd_recorder):
    app = make_app(RATE_LIMITS={"login": (2, 60.0), "sync": (1, 1.0)}, TRUSTED_PROXIES=1)
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
