"""One Graphite path segment from an application's word (an endpoint, a feature, a rule...).

Metric names here are built as `<area>.<segment>.<field>`, and dashboards rely on the segment
being exactly one path level (`stats.timers.app.http.*.latency.upper`). So a segment keeps
letters, digits, `_` and `-`, turns everything else (dots included) into `_`, and is never
empty. Results are cached: segments come from a small, code-defined vocabulary.
"""

from __future__ import annotations

import re
from functools import lru_cache

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
MAX_LENGTH = 64


@lru_cache(maxsize=4096)
def segment(word: object, fallback: str = "other") -> str:
    """`auth.login` -> `auth_login`, `/players/<int:id>` -> `players_int_id`, `` -> fallback."""
    text = _UNSAFE.sub("_", str(word)).strip("_")[:MAX_LENGTH]
    return text or fallback
