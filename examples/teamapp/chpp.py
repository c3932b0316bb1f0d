"""The app's client for the CHPP game API: one `requests` session, retries, clear errors.

Server errors are retried by urllib3 (GET is idempotent); a 429 is not retried here, because the
answer says when to come back and the manager is better told than kept waiting.
"""

from __future__ import annotations

from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

FILES = ("players", "teamdetails", "training")


class ChppError(Exception):
    """The game API could not answer the question."""


class ChppUnavailable(ChppError):
    pass


class ChppRateLimited(ChppError):
    def __init__(self, retry_after: int):
        super().__init__(f"CHPP rate limit reached, retry in {retry_after} s")
        self.retry_after = retry_after


def endpoint_name(request: requests.PreparedRequest) -> str:
    """Name a CHPP call by its `file` parameter (a fixed list), never by its URL."""
    query = (request.url or "").partition("?")[2]
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        if name == "file":
            return value if value in FILES else "other"
    return "other"


class ChppClient:
    def __init__(
        self,
        base_url: str,
        consumer_key: str,
        *,
        timeout: float = 5.0,
        retries: int = 2,
        backoff: float = 0.05,
    ):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["X-CHPP-Consumer"] = consumer_key
        retry = Retry(
            total=retries,
            backoff_factor=backoff,
            allowed_methods={"GET"},
            status_forcelist=(500, 502, 503, 504),
            raise_on_status=False,
            # urllib3 would otherwise also retry a 429 that carries Retry-After, sleeping in
            # the request thread for as long as the API asks.
            respect_retry_after_header=False,
        )
        self.session.mount("http://", HTTPAdapter(max_retries=retry))
        self.session.mount("https://", HTTPAdapter(max_retries=retry))

    def fetch(self, file: str, team_id: int) -> dict[str, Any]:
        try:
            response = self.session.get(
                f"{self.base_url}/chppxml.ashx",
                timeout=self.timeout,
                params={"file": file, "teamID": team_id},
            )
        except requests.RequestException as exc:
            raise ChppUnavailable(f"CHPP unreachable: {type(exc).__name__}") from exc
        if response.status_code == 429:
            raise ChppRateLimited(int(response.headers.get("Retry-After", "10")))
        if response.status_code >= 500:
            raise ChppUnavailable(f"CHPP answered {response.status_code}")
        response.raise_for_status()
        # Deliberately unguarded, as in many real apps: a truncated body during an outage
        # raises here and surfaces as an exception metric on the sync endpoint.
        return response.json()

    def players(self, team_id: int) -> list[dict[str, Any]]:
        return self.fetch("players", team_id)["players"]

    def close(self) -> None:
        self.session.close()
