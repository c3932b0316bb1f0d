"""User pseudonyms: keyed, rotating on schedule, and revealing nothing of the id."""

import datetime as dt
import hashlib
import hmac

import pytest
from freezegun import freeze_time

from statsd_metrics.privacy import DAY, UserHasher


@freeze_time("2026-03-14 10:00:00")
def test_pseudonym_is_stable_within_a_period_and_distinct_per_user():
    hasher = UserHasher("secret")
    first = hasher.pseudonym(42)
    assert hasher.pseudonym(42) == first
    assert hasher.pseudonym("42") == first  # ids are compared as text
    assert hasher.pseudonym(43) != first
    assert len(first) == 16
    assert int(first, 16) >= 0


def test_key_rotates_at_the_utc_day_boundary():
    with freeze_time("2026-03-14 23:59:59") as frozen:
        hasher = UserHasher("secret")
        before = hasher.pseudonym(42)
        frozen.tick(dt.timedelta(seconds=1))  # 00:00:00 UTC: a new period
        after = hasher.pseudonym(42)
        frozen.tick(dt.timedelta(hours=23))
        assert hasher.pseudonym(42) == after
    assert before != after


def test_rotation_period_is_configurable_and_validated():
    now = [1_000_000.0]
    hasher = UserHasher("secret", rotation=3600, clock=lambda: now[0])
    a = hasher.pseudonym("u")
    now[0] += 3600
    assert hasher.pseudonym("u") != a
    with pytest.raises(ValueError, match="rotation"):
        UserHasher("secret", rotation=0)


@freeze_time("2026-03-14 10:00:00")
def test_processes_sharing_the_secret_agree_and_other_secrets_do_not():
    assert UserHasher("secret").pseudonym(7) == UserHasher(b"secret").pseudonym(7)
    assert UserHasher("secret").pseudonym(7) != UserHasher("other").pseudonym(7)


@freeze_time("2026-03-14 10:00:00")
def test_pseudonym_is_not_an_unkeyed_hash_of_the_id():
    # An unkeyed hash of small ids can be reversed by trying them all; the keyed one cannot.
    pseudonym = UserHasher("secret").pseudonym(42)
    for algorithm in ("md5", "sha1", "sha256"):
        assert not hashlib.new(algorithm, b"42").hexdigest().startswith(pseudonym)
    assert not hmac.new(b"secret", b"42", "sha256").hexdigest().startswith(pseudonym)
    assert "42" not in pseudonym


def test_missing_secret_falls_back_to_a_random_key_with_a_warning(caplog):
    a, b = UserHasher(None), UserHasher("")
    assert a.ephemeral
    assert b.ephemeral
    assert a.pseudonym(1) != b.pseudonym(1)
    assert "STATSD_METRICS_USER_HASH_SECRET" in caplog.text


def test_from_config_reads_secret_and_rotation():
    now = [DAY * 100]
    config = {"STATSD_METRICS_USER_HASH_SECRET": "s", "STATSD_METRICS_USER_HASH_ROTATION": 60}
    hasher = UserHasher.from_config(config, clock=lambda: now[0])
    assert not hasher.ephemeral
    assert hasher.rotation == 60
    assert hasher.pseudonym(1) == UserHasher("s", rotation=60, clock=lambda: now[0]).pseudonym(1)
