"""`Pipeline`: metrics collected, then sent together, as the `statsd` package's pipeline does.

    with client.pipeline() as pipe:
        pipe.incr("a")
        with pipe.timer("b"):
            ...
    # both lines leave together here, packed into as few payloads as fit

A pipeline has every metric method of its client and builds lines with the client's own
pieces (prefix, constant tags, caches, sampling), so a line is the same whichever way it is
sent. `send()` hands the lines to the client at once and forgets them: sending twice sends
nothing the second time. A pipeline of a pipeline (`pipe.pipeline()`) sends into its parent.
Like the client, nothing here raises; drops are counted in the client's `stats()`.
"""

from __future__ import annotations

from typing import Any

from .client import Client

# What a pipeline borrows from its client to build lines exactly as the client would.
_SHARED = (
    "_stats",
    "_random",
    "_random_source",
    "_heads",
    "_ones",
    "_timings",
    "_tag_parts",
    "_prefix",
    "_constant",
    "_constant_part",
    "_plain",
    "_max_size",
    "_timeout",
)


class Pipeline(Client):
    """Lines waiting for `send()`. Not thread-safe: one pipeline per block of code."""

    def __init__(self, client: Client) -> None:  # no socket, no thread: not Client.__init__
        for name in _SHARED:
            setattr(self, name, getattr(client, name))
        self._client = client
        self._lines: list[str] = []
        self._write = self._lines.append
        self._closed = False

    def send(self) -> None:
        """Hand the collected lines to the client (or the parent pipeline), together."""
        lines, self._lines = self._lines, []
        self._write = self._lines.append
        if lines:
            self._client._write_lines(lines)

    def _write_lines(self, lines: list[str]) -> None:
        self._lines.extend(lines)  # a nested pipeline's lines join this one's

    def flush(self) -> None:
        self.send()

    def close(self) -> None:
        self.send()

    def stats(self) -> dict[str, object]:
        return self._client.stats()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.send()

    def __repr__(self) -> str:
        return f"<statsd_metrics.Pipeline of {self._client!r}: {len(self._lines)} lines>"
