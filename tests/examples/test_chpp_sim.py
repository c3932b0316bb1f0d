"""The CHPP simulator: data, rate limit with quota headers, bursts of errors."""

import json

import pytest

from examples.teamapp.chpp_sim import ChppSimulator, SimSettings, create_sim_app


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


def client_for(clock, **settings):
    sim = ChppSimulator(SimSettings(latency_ms=0, error_rate=0, **settings), clock=clock)
    return sim, create_sim_app(sim, sleep=lambda s: None).test_client()


def get(client, file="players", team=1001, consumer="key"):
    headers = {"X-CHPP-Consumer": consumer} if consumer else {}
    return client.get(f"/chppxml.ashx?file={file}&teamID={team}", headers=headers)


def test_players_are_deterministic_per_team_and_evolve(clock):
    _, client = client_for(clock, rate_limit=100)
    first = get(client).get_json()["players"]
    assert 16 <= len(first) <= 22
    assert {"player_id", "form", "stamina", "scoring"} <= set(first[0])
    _, other = client_for(clock, rate_limit=100)
    assert get(other).get_json()["players"] == first  # same seed, same squad
    later = [get(client).get_json()["players"] for _ in range(10)][-1]
    assert later != first  # form, stamina, injuries move on between calls


def test_rate_limit_window_and_headers(clock):
    _, client = client_for(clock, rate_limit=3, window_s=10)
    remaining = [int(get(client).headers["X-RateLimit-Remaining"]) for _ in range(3)]
    assert remaining == [2, 1, 0]
    limited = get(client)
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "10"
    assert get(client, consumer="other-key").status_code == 200  # per consumer key
    clock.now += 10
    assert get(client).status_code == 200


def test_burst_fails_most_calls_then_ends(clock):
    _sim, client = client_for(clock, rate_limit=1000)
    client.post("/_sim/burst?seconds=5&error_rate=1.0")
    answers = [get(client) for _ in range(40)]
    codes = {a.status_code for a in answers}
    assert codes <= {200, 500, 503}
    assert codes & {500, 503}
    truncated = [a for a in answers if a.status_code == 200]
    assert truncated, "a burst also answers 200 with a cut body"
    with pytest.raises(json.JSONDecodeError):
        json.loads(truncated[0].data)
    clock.now += 5
    assert all(get(client).status_code == 200 for _ in range(10))


def test_requests_without_consumer_or_with_bad_input_are_refused(clock):
    _, client = client_for(clock)
    assert get(client, consumer=None).status_code == 401
    assert get(client, file="nope").status_code == 404
    assert (
        client.get(
            "/chppxml.ashx?file=players&teamID=x", headers={"X-CHPP-Consumer": "k"}
        ).status_code
        == 400
    )
