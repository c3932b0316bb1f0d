"""A pseudonym secret that moves forward one UTC day at a time and cannot move back.

With a fixed secret every period key can be derived at any time, so a secret stolen today
re-identifies every pseudonym ever captured. A ratchet gives forward secrecy instead: the
secret of day `d + 1` is `HMAC-SHA256(secret of day d, "…ratchet/v1")`, written as hex, and
nothing computes day `d` back from it. Every process derives the same secret for the same day
from any earlier one, so the operator can advance the stored secret every day (a timer at
00:00 UTC running `python -m statsd_metrics.ratchet --date <its date>`, the secret on stdin)
without coordinating with running processes: they reach the same value by themselves. What
was stored before, once destroyed, is out of reach: docs/metrics.md, "Threat model".
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import hmac
import sys

_RATCHET = b"statsd-metrics/user-pseudonym/ratchet/v1"
_EPOCH = dt.date(1970, 1, 1)


def day_number(date: dt.date | str) -> int:
    """Days since 1970-01-01 of a UTC date (`2026-12-03` or a `date`)."""
    if isinstance(date, str):
        try:
            date = dt.date.fromisoformat(date.strip())
        except ValueError:
            raise ValueError(
                f"a secret's date is a UTC date like 2026-12-03, not {date!r}"
            ) from None
    return (date - _EPOCH).days


def advance(secret: bytes, days: int) -> bytes:
    """The secret `days` days later (hex text, so that it can be stored and read back)."""
    for _ in range(days):
        secret = hmac.new(secret, _RATCHET, hashlib.sha256).hexdigest().encode()
    return secret


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m statsd_metrics.ratchet",
        description="Print the pseudonym secret read on stdin, advanced from its date to --to "
        "(default: today, UTC). Store the result with its new date; destroy the old value.",
    )
    parser.add_argument("--date", required=True, help="the UTC date the secret is for")
    parser.add_argument("--to", default=None, help="the UTC date wanted (default: today)")
    args = parser.parse_args(argv)
    start = day_number(args.date)
    end = day_number(args.to or dt.datetime.now(dt.UTC).date().isoformat())
    if end < start:
        parser.error("a secret only moves forward: --to is before --date")
    secret = sys.stdin.readline().strip().encode()
    if not secret:
        parser.error("no secret on stdin")
    print(advance(secret, end - start).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
