"""Security events as counters: logins, lockouts and rate-limit triggers.

Counters only: how often, never who. A rate-limit rule is named by the application (`login`,
`sync`); the client address or account that tripped it stays in the application.
"""

from __future__ import annotations

from statsd_metrics.binding import ClientBinding
from statsd_metrics.paths import segment


class SecurityMetrics(ClientBinding):
    """`<prefix>.security.*`: see docs/metrics.md."""

    def login_succeeded(self) -> None:
        self.client.incr("security.login.succeeded")

    def login_failed(self) -> None:
        """Wrong user name or password."""
        self.client.incr("security.login.failed")

    def login_blocked(self) -> None:
        """A login refused because the account is locked (whatever the password)."""
        self.client.incr("security.login.blocked")

    def lockout(self) -> None:
        """An account was locked after too many failures."""
        self.client.incr("security.lockouts")

    def rate_limited(self, rule: str) -> None:
        """A request was refused by the application's rate limit `rule`."""
        self.client.incr(f"security.rate_limited.{segment(rule)}")

    def proxy_headers_ignored(self) -> None:
        """A request carried more `X-Forwarded-For` hops than the proxies the application
        trusts (any, when it trusts none): a spoofing attempt, or a proxy not configured."""
        self.client.incr("security.proxy_headers_ignored")

    def invalid_id(self) -> None:
        """A URL held an id that cannot be one (too long, out of range): answered 404."""
        self.client.incr("security.invalid_ids")
