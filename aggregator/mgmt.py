"""The management port: the reference's TCP admin commands, and HTTP health on the same port.

A connection whose first bytes are an HTTP request line (`GET` or `HEAD`) is answered as HTTP:
`/health` (or `/`) returns 200 when the daemon is up and 503 when it is down (set by
`health down`, or by `health_status = "down"` in the config), with a small JSON body.
Anything else speaks the reference's line commands; several commands in one chunk are
answered in order (the reference takes each chunk as one command).

With `mgmt_token` set, a command connection must first send `auth <token>` (answered
`auth: ok`); anything else, or a wrong token, is answered `ERROR auth` and the connection
closed. The commands read every metric name and delete metrics, so off loopback the token is
required (config.py); the HTTP health check stays open, as orchestrators probe it and it names
no metric.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from typing import Protocol

log = logging.getLogger("aggregator.mgmt")

HELP = (
    "Commands: stats, counters, timers, gauges, delcounters, deltimers, delgauges, "
    "health, config, auth, quit\n\n"
)
_DELETES = {"delcounters": "counters", "deltimers": "timers", "delgauges": "gauges"}


class Controls(Protocol):
    """What the management interface needs from the daemon."""

    health: str

    @property
    def mgmt_token(self) -> str: ...  # "" when the commands need no token

    def status_lines(self) -> list[str]: ...

    async def dump(self, kind: str) -> dict: ...

    async def delete(self, kind: str, pattern: str) -> list[str]: ...

    def config_lines(self) -> list[str]: ...

    def health_report(self) -> dict: ...


class Management:
    def __init__(self, controls: Controls) -> None:
        self.controls = controls

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            first = True
            authorized = not self.controls.mgmt_token
            while data := await reader.read(65536):
                text = data.decode("utf-8", "replace")
                if first and text.startswith(("GET ", "HEAD ")):
                    writer.write(self.http(text))
                    break
                first = False
                if not authorized:
                    authorized, text = self.authenticate(text, writer)
                    if not authorized:
                        break
                    if not text.strip():  # nothing but `auth` in this chunk
                        await writer.drain()
                        continue
                if not await self.commands(text, writer):
                    break
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError) as exc:
            log.debug("mgmt connection error: %s", exc)
        finally:
            writer.close()

    def authenticate(self, text: str, writer: asyncio.StreamWriter) -> tuple[bool, str]:
        """The first line must be `auth <token>`: (whether it was, the rest of the chunk)."""
        first, _, rest = text.lstrip().partition("\n")
        word, _, given = first.strip().partition(" ")
        token = self.controls.mgmt_token
        if word == "auth" and hmac.compare_digest(given.encode(), token.encode()):
            writer.write(b"auth: ok\n")
            return True, rest
        writer.write(b"ERROR auth\n")
        peer = writer.get_extra_info("peername")
        log.warning("mgmt: refused %s: %s", peer, "wrong token" if word == "auth" else "no auth")
        return False, ""

    async def commands(self, text: str, writer: asyncio.StreamWriter) -> bool:
        """Answer each command line of one chunk; False after `quit`."""
        for line in [line for line in text.splitlines() if line.strip()] or [text]:
            words = line.strip().split(" ")
            cmd, args = words[0], [w for w in words[1:] if w]
            if cmd == "quit":
                return False
            writer.write((await self.answer(cmd, args)).encode())
        return True

    async def answer(self, cmd: str, args: list[str]) -> str:
        c = self.controls
        if cmd == "help":
            return HELP
        if cmd == "auth":  # again, or where no token is needed
            return "auth: ok\n"
        if cmd == "health":
            if args and args[0].lower() in ("up", "down"):
                c.health = args[0].lower()
            return f"health: {c.health}\n"
        if cmd == "stats":
            return "".join(f"{line}\n" for line in c.status_lines()) + "END\n\n"
        if cmd in ("counters", "timers", "gauges"):
            return json.dumps(await c.dump(cmd), indent=1, sort_keys=True) + "\nEND\n\n"
        if cmd in _DELETES:
            out = []
            for pattern in args:
                deleted = await c.delete(_DELETES[cmd], pattern)
                out += [f"deleted: {k}\n" for k in deleted] or [f"metric {pattern} not found\n"]
            return "".join(out) + "END\n\n"
        if cmd == "config":
            return "\n" + "".join(f"{line}\n" for line in c.config_lines())
        return "ERROR\n"

    def http(self, request: str) -> bytes:
        method, _, rest = request.partition(" ")
        path = rest.partition(" ")[0].partition("?")[0]
        if path in ("/", "/health"):
            report = self.controls.health_report()
            status = "200 OK" if report["health"] == "up" else "503 Service Unavailable"
            body = json.dumps(report, sort_keys=True).encode() + b"\n"
        else:
            status, body = "404 Not Found", b"not found\n"
        head = (
            f"HTTP/1.0 {status}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        return head + (body if method == "GET" else b"")
