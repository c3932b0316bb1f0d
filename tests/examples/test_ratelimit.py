from examples.teamapp.ratelimit import RateLimiter


def test_sliding_window_per_rule_and_key():
    now = [0.0]
    limiter = RateLimiter({"login": (2, 10.0), "sync": (1, 5.0)}, clock=lambda: now[0])
    assert limiter.hit("login", "a")
    assert limiter.hit("login", "a")
    assert not limiter.hit("login", "a")
    assert limiter.hit("login", "b")  # another key
    assert limiter.hit("sync", "a")  # another rule
    now[0] = 10.0
    assert limiter.hit("login", "a")
