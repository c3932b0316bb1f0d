"""User pseudonyms: keyed, rotating in whole UTC days, revealing nothing of the id, and keyed
only by a secret that resists guessing."""

import datetime as dt
import hashlib
import hmac
import logging
import secrets

import pytest
from freezegun import freeze_time

from statsd_metrics.privacy import DAY, MAX_ROTATION_DAYS, UserHasher, secret_weakness

SECRET = "6f1c0e4d2b9a87355e0f3c1d7a2b4e6f8091a2b3c4d5e6f708192a3b4c5d6e7f"
OTHER = secrets.token_hex(32)


@freeze_time("2026-03-14 10:00:00")
def test_pseudonym_is_stable_within_a_period_and_distinct_per_user():
    hasher = UserHasher(SECRET)
    first = hasher.pseudonym(42)
    assert hasher.pseudonym(42) == first
    assert hasher.pseudonym("42") == first  # ids are compared as text
    assert hasher.pseudonym(43) != first
    assert len(first) == 16
    assert int(first, 16) >= 0


def test_key_rotates_at_the_utc_day_boundary():
    with freeze_time("2026-03-14 23:59:59") as frozen:
        hasher = UserHasher(SECRET)
        before = hasher.pseudonym(42)
        frozen.tick(dt.timedelta(seconds=1))  # 00:00:00 UTC: a new period
        after = hasher.pseudonym(42)
        frozen.tick(dt.timedelta(hours=23, minutes=59))
        assert hasher.pseudonym(42) == after
    assert before != after


def test_rotation_is_whole_utc_days_up_to_a_bound():
    now = [DAY * 20_000 + 5]  # 00:00:05 UTC on an even day number
    hasher = UserHasher(SECRET, rotation_days=2, clock=lambda: now[0])
    first = hasher.pseudonym("u")
    now[0] += DAY
    assert hasher.pseudonym("u") == first  # the second day of the period
    now[0] += DAY
    assert hasher.pseudonym("u") != first
    assert UserHasher(SECRET, rotation_days=MAX_ROTATION_DAYS).rotation == MAX_ROTATION_DAYS * DAY


@pytest.mark.parametrize("days", [0, -1, MAX_ROTATION_DAYS + 1, 1e12, 1.5, "3600", True, None])
def test_unbounded_or_partial_day_rotation_is_refused(days):
    with pytest.raises(ValueError, match="whole number of UTC days from 1 to 3"):
        UserHasher(SECRET, rotation_days=days)


def test_rotation_in_seconds_from_config_is_taken_only_as_whole_days():
    now = [DAY * 100]
    config = {"STATSD_METRICS_USER_HASH_SECRET": SECRET}
    two_days = UserHasher.from_config({**config, "STATSD_METRICS_USER_HASH_ROTATION": 2 * DAY})
    assert two_days.rotation_days == 2
    for seconds in (3600, 1e12, 1.5 * DAY):
        with pytest.raises(ValueError, match="ROTATION_DAYS"):
            UserHasher.from_config({**config, "STATSD_METRICS_USER_HASH_ROTATION": seconds})
    hasher = UserHasher.from_config(
        {**config, "STATSD_METRICS_USER_HASH_ROTATION_DAYS": "3"}, clock=lambda: now[0]
    )
    assert not hasher.ephemeral
    assert hasher.rotation_days == 3
    assert hasher.pseudonym(1) == UserHasher(
        SECRET, rotation_days=3, clock=lambda: now[0]
    ).pseudonym(1)


@pytest.mark.parametrize(
    ("secret", "why"),
    [
        ("x", "1 bytes long"),
        ("teamapp", "7 bytes long"),
        (secrets.token_hex(15), "30 bytes long"),
        ("a" * 64, "bits"),
        ("passwordpasswordpasswordpassword1", "bits"),
        (secrets.token_hex(16), "bits"),  # 32 characters, but 16 bytes of randomness
        ("the quick brown fox jumps over the lazy dog", "words only"),
        ("Correct-Horse-Battery-Staple-Forever-And-Ever", "words only"),
        ("CORRECT_HORSE_BATTERY_STAPLE_FOREVER_AND_EVER", "words only"),
    ],
)
def test_weak_secrets_are_refused_with_how_to_make_one(secret, why):
    assert why in (secret_weakness(secret.encode()) or "")
    with pytest.raises(ValueError, match="is refused") as refused:
        UserHasher(secret)
    message = str(refused.value)
    assert why in message
    assert "STATSD_METRICS_USER_HASH_SECRET" in message
    assert 'python -c "import secrets; print(secrets.token_hex(32))"' in message
    assert len(secret) < 3 or secret not in message  # the refusal never quotes the secret


@pytest.mark.parametrize("make", [lambda: secrets.token_hex(32), lambda: secrets.token_bytes(32),
                                  lambda: secrets.token_urlsafe(32)])  # fmt: skip
def test_generated_secrets_are_accepted(make):
    for _ in range(2000):
        assert secret_weakness(s.encode() if isinstance(s := make(), str) else s) is None


def test_a_weak_secret_can_be_allowed_explicitly_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING):
        hasher = UserHasher.from_config(
            {
                "STATSD_METRICS_USER_HASH_SECRET": "teamapp",
                "STATSD_METRICS_USER_HASH_ALLOW_WEAK_SECRET": "true",
            }
        )
    assert len(hasher.pseudonym(1)) == 16
    assert "weak" in caplog.text
    assert "teamapp" not in caplog.text


@freeze_time("2026-03-14 10:00:00")
def test_processes_sharing_the_secret_agree_and_other_secrets_do_not():
    assert UserHasher(SECRET).pseudonym(7) == UserHasher(SECRET.encode()).pseudonym(7)
    assert UserHasher(SECRET).pseudonym(7) != UserHasher(OTHER).pseudonym(7)


@freeze_time("2026-03-14 10:00:00")
def test_pseudonym_is_not_an_unkeyed_hash_of_the_id():
    # An unkeyed hash of small ids can be reversed by trying them all; the keyed one cannot.
    pseudonym = UserHasher(SECRET).pseudonym(42)
    for algorithm in ("md5", "sha1", "sha256"):
        assert not hashlib.new(algorithm, b"42").hexdigest().startswith(pseudonym)
    assert not hmac.new(SECRET.encode(), b"42", "sha256").hexdigest().startswith(pseudonym)
    assert "42" not in pseudonym


def test_only_the_current_period_key_is_kept():
    now = [DAY * 100]
    hasher = UserHasher(SECRET, clock=lambda: now[0])
    hasher.pseudonym(1)
    first_key = hasher._current
    now[0] += DAY
    hasher.pseudonym(1)
    assert hasher._current[0] == first_key[0] + 1
    assert first_key[1] not in vars(hasher).values()


def test_missing_secret_falls_back_to_a_random_key_with_a_warning(caplog):
    a, b = UserHasher(None), UserHasher("")
    assert a.ephemeral
    assert b.ephemeral
    assert a.pseudonym(1) != b.pseudonym(1)
    assert "STATSD_METRICS_USER_HASH_SECRET" in caplog.text
