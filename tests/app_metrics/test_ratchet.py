"""The dated secret: processes agree whatever day they started on, and a later secret cannot
give back an earlier day's pseudonyms."""

import subprocess
import sys

import pytest

from statsd_metrics.privacy import DAY, UserHasher
from statsd_metrics.ratchet import advance, day_number

SECRET = "0f4e8a2c6b1d9e3f7a5c2b8d4e6f1a3c9b7d5e2f8a4c6b1d3e9f7a2c5b8d4e6f"
START = "2026-11-30"


def at(date: str, hour: int = 12):
    return lambda: day_number(date) * DAY + hour * 3600


def test_a_process_started_on_the_advanced_secret_agrees_with_one_started_before():
    old = UserHasher(SECRET, secret_date=START, clock=at("2026-12-03"))
    stored = advance(SECRET.encode(), 3).decode()  # what the daily timer wrote by then
    new = UserHasher(stored, secret_date="2026-12-03", clock=at("2026-12-03"))
    assert old.pseudonym(42) == new.pseudonym(42)
    assert old.pseudonym(42) != UserHasher(SECRET, clock=at("2026-12-03")).pseudonym(42)


def test_pseudonyms_still_rotate_at_midnight_and_the_old_secret_is_forgotten():
    now = [day_number(START) * DAY + 3600]
    hasher = UserHasher(SECRET, secret_date=START, clock=lambda: now[0])
    first = hasher.pseudonym(42)
    assert SECRET.encode() in [value for pair in [hasher._ratchet] for value in pair]
    now[0] += DAY
    assert hasher.pseudonym(42) != first
    held = repr(vars(hasher))
    assert SECRET not in held  # the day-1 secret is gone from the hasher
    assert advance(SECRET.encode(), 1).decode() in held


def test_a_later_secret_cannot_give_back_an_earlier_day():
    day1 = UserHasher(SECRET, secret_date=START, clock=at(START)).pseudonym(42)
    stolen = advance(SECRET.encode(), 7).decode()
    thief = UserHasher(stolen, secret_date="2026-12-07", clock=at(START))  # clock set back
    assert thief.pseudonym(42) != day1


def test_the_date_must_start_a_rotation_period():
    with pytest.raises(ValueError, match="first day of a rotation period"):
        UserHasher(SECRET, rotation_days=2, secret_date="2026-11-30")  # day 20 787, odd
    UserHasher(SECRET, rotation_days=2, secret_date="2026-12-01")
    with pytest.raises(ValueError, match="UTC date"):
        UserHasher.from_config(
            {
                "STATSD_METRICS_USER_HASH_SECRET": SECRET,
                "STATSD_METRICS_USER_HASH_SECRET_DATE": "yesterday",
            }
        )


def test_the_command_advances_the_secret_read_on_stdin():
    run = subprocess.run(
        [sys.executable, "-m", "statsd_metrics.ratchet", "--date", START, "--to", "2026-12-02"],
        input=SECRET + "\n", capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    assert run.stdout.strip() == advance(SECRET.encode(), 2).decode()
    assert SECRET not in run.stdout
    back = subprocess.run(
        [sys.executable, "-m", "statsd_metrics.ratchet", "--date", START, "--to", "2026-11-01"],
        input=SECRET, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert back.returncode == 2
    assert "only moves forward" in back.stderr
