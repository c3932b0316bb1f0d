"""A segment is exactly one Graphite path level, whatever the word."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from statsd_metrics.paths import MAX_LENGTH, segment


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("squad", "squad"),
        ("auth.login", "auth_login"),
        ("/players/<int:player_id>", "players_int_player_id"),
        ("JSONDecodeError", "JSONDecodeError"),
        ("set-pieces", "set-pieces"),
        ("", "other"),
        ("...", "other"),
        ("café", "caf"),
        (42, "42"),
    ],
)
def test_segment(word, expected):
    assert segment(word) == expected


def test_fallback_is_configurable():
    assert segment("/", fallback="root") == "root"


@given(st.text())
def test_any_text_gives_one_safe_nonempty_level(text):
    result = segment(text)
    assert result
    assert len(result) <= MAX_LENGTH
    assert all(c.isascii() and (c.isalnum() or c in "_-") for c in result)
