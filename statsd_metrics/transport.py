"""Sockets to the aggregator: UDP (the default), TCP and Unix (datagram or stream).

`Transport.send` holds the error policy for all of them: it never raises, counts every payload
it could not deliver under a reason, closes the socket after an error that may have broken it,
and waits `RETRY_INTERVAL` before opening a socket again after a failed attempt, so a dead
aggregator costs one quick failure per second rather than one per metric. Each transport only
says how to open its socket (`_open`) and how to write one payload (`_send`).

Transports are thread-safe: each holds a lock around its socket and state, never around a DNS
lookup. UDP, the default and the hot path of unbuffered clients, sends without it once the
address is confirmed (see `UDPTransport`).

Why not the `statsd` package's clients: they resolve the host once, in the constructor, and raise
there when it does not resolve; UDP is IPv4 unless told otherwise, so `localhost` misses an
IPv6-only aggregator; UDP errors are swallowed uncounted; the stream clients raise into the
caller on a refused connection.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import select
import socket
import threading
from collections.abc import Callable

from .stats import Stats

RETRY_INTERVAL = 1.0

Candidate = tuple[int, tuple]  # (address family, socket address)
Resolver = Callable[..., list]


def reason_for(exc: OSError) -> str:
    """The drop reason counted for a socket error."""
    if isinstance(exc, socket.gaierror):
        return "unresolved"
    if isinstance(exc, TimeoutError):
        return "timeout"
    if exc.errno in (errno.ECONNREFUSED, errno.ENOENT, errno.ECONNRESET, errno.EPIPE):
        return "refused"
    if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.ENOBUFS):
        return "buffer_full"
    if exc.errno == errno.EMSGSIZE:
        return "too_large"
    return "send_error"


# After these the socket is still good: only this payload was refused by the kernel.
_KEEP_SOCKET = frozenset({"buffer_full", "too_large"})


class Transport:
    """One connected socket, opened lazily and re-opened after errors."""

    def __init__(self, stats: Stats, clock: Callable[[], float]) -> None:
        self._stats = stats
        self._clock = clock
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._retry_at = 0.0
        self._open_error = "refused"

    def send(self, payload: bytes, lines: int) -> None:
        """Deliver one payload of `lines` lines, or count it as dropped. Never raises OSError."""
        with self._lock:
            sock = self._sock
            if sock is None:
                now = self._clock()
                if now < self._retry_at:
                    self._stats.dropped(self._open_error, lines)
                    return
                try:
                    sock = self._sock = self._open()
                except OSError as exc:
                    self._open_error = reason_for(exc)
                    self._retry_at = now + RETRY_INTERVAL
                    self._stats.dropped(self._open_error, lines, str(exc))
                    return
            try:
                self._send(sock, payload, lines)
            except OSError as exc:
                reason = reason_for(exc)
                self._stats.dropped(reason, lines, str(exc))
                if reason not in _KEEP_SOCKET:
                    self._close()
            else:
                self._stats.sent_lines += lines
                self._stats.sent_payloads += 1

    def close(self) -> None:
        with self._lock:
            self._close()

    def after_fork(self) -> None:
        """In a child: drop the inherited socket (a TCP stream shared with the parent would
        interleave both processes' bytes) and the lock (it may have been held at the fork).
        Closing our copy of the descriptor leaves the parent's connection open."""
        self._lock = threading.Lock()
        self._close()
        self._retry_at = 0.0

    def _close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def _open(self) -> socket.socket:
        raise NotImplementedError

    def _send(self, sock: socket.socket, payload: bytes, lines: int) -> None:
        raise NotImplementedError


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class NetworkTransport(Transport):
    """A transport to `host:port`, resolved in the background (at once, then every
    `resolve_interval` seconds; IP literals and `localhost` are answered at construction).

    Resolution runs outside the lock (`lookup`, possibly slow) and is applied under it
    (`use`). A failed lookup keeps the addresses we had: a DNS hiccup must not stop metrics.
    `localhost` always includes both loopbacks, so it reaches an aggregator that listens on
    127.0.0.1 or on ::1 whatever /etc/hosts says. A `family` (`AF_INET6` for the `statsd`
    package's `ipv6=True`) keeps only addresses of that family.
    """

    socktype = socket.SOCK_DGRAM

    def __init__(
        self,
        host: str,
        port: int,
        stats: Stats,
        *,
        clock: Callable[[], float],
        resolver: Resolver,
        resolve_interval: float,
        family: int = 0,
    ) -> None:
        super().__init__(stats, clock)
        self.family = family
        self.host = host
        self.port = port
        self._resolver = resolver
        self._resolve_interval = resolve_interval
        self.candidates: list[Candidate] = []
        self._index = 0
        self._next_lookup = 0.0  # due at once: the client's background thread looks it up
        # A host name waits for DNS, which may take seconds or time out (a resolver down): the
        # application's start, or the first request that creates the default client, must not
        # wait with it. Only what needs no DNS is looked up here.
        if _is_ip_literal(host) or host.lower() == "localhost":
            self.use(self.lookup())
        if _is_ip_literal(host):
            self._next_lookup = float("inf")

    @property
    def resolves(self) -> bool:
        """Whether the address can change, i.e. whether a background re-resolution is needed."""
        return self._next_lookup != float("inf")

    def due(self) -> bool:
        return self._clock() >= self._next_lookup

    def lookup(self) -> list[Candidate] | None:
        try:
            infos = self._resolver(self.host, self.port, self.family, self.socktype)
        except (OSError, UnicodeError):
            infos = []
        found = [(info[0], info[4]) for info in infos]
        if self.host.lower() == "localhost":
            found += [
                (socket.AF_INET, ("127.0.0.1", self.port)),
                (socket.AF_INET6, ("::1", self.port, 0, 0)),
            ]
        if self.family:
            found = [candidate for candidate in found if candidate[0] == self.family]
        unique = list(dict.fromkeys(found))
        return unique or None

    def use(self, candidates: list[Candidate] | None) -> None:
        with self._lock:
            now = self._clock()
            if candidates is None:
                self._next_lookup = now + RETRY_INTERVAL
                return
            self._next_lookup = now + self._resolve_interval
            if candidates != self.candidates:
                self.candidates = candidates
                self._index = 0
                self._retry_at = 0.0
                self._close()

    def _address(self) -> Candidate:
        if not self.candidates:
            raise socket.gaierror(socket.EAI_NONAME, f"{self.host!r} does not resolve")
        return self.candidates[self._index % len(self.candidates)]


class _Socket(socket.socket):
    """A socket closed when its last reference goes, never earlier: another thread may be in
    the middle of a send on it, and closing the descriptor under it could let that send reach
    whatever file reuses the number."""

    def __del__(self) -> None:
        self.close()


class UDPTransport(NetworkTransport):
    """A connected, non-blocking UDP socket.

    The kernel tells a connected UDP socket when the port is closed (ICMP port unreachable, seen
    at once on loopback through SO_ERROR). Until a payload has gone through without that error,
    each send is checked and a refused payload is re-sent to the next candidate address: this is
    how `localhost` finds the family the aggregator listens on without losing the first payload.

    Once confirmed, `send` takes no lock and makes one syscall (a lock costs as much as the rest
    of an unbuffered metric here). Everything else runs under the lock. A socket that is
    replaced is only dropped, and closes when the last sender is done with it (`_Socket`). A
    refusal then shows up on the next send, which counts the previous payload as refused and
    goes back to checked sends.
    """

    socktype = socket.SOCK_DGRAM
    _confirmed = False
    _last_lines = 0

    def send(self, payload: bytes, lines: int) -> None:
        sock = self._sock
        if self._confirmed and sock is not None:
            try:
                sock.send(payload)
            except ConnectionRefusedError:  # the previous payload was refused, not delivered
                self._stats.sent_lines -= self._last_lines
                self._stats.sent_payloads -= 1
                self._stats.dropped("refused", self._last_lines, "the aggregator's port closed")
                self._confirmed = False
            except OSError:
                pass  # the locked path sends again and counts what fails
            else:
                self._last_lines = lines
                # Unlocked, yet exact under the GIL: no thread switch inside an int `+=`.
                self._stats.sent_lines += lines
                self._stats.sent_payloads += 1
                return
        super().send(payload, lines)

    def _close(self) -> None:
        self._confirmed = False
        self._sock = None  # closed by its last holder

    def _open(self) -> socket.socket:
        family, address = self._address()
        sock = _Socket(family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.connect(address)
        except OSError:
            sock.close()
            raise
        return sock

    def _send(self, sock: socket.socket, payload: bytes, lines: int) -> None:
        """A checked send: on refusal, the same payload goes to the next candidate address."""
        for _ in self.candidates:
            try:
                sock.send(payload)
                error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            except ConnectionRefusedError:
                error = errno.ECONNREFUSED
            if error == 0:
                self._confirmed = True
                self._last_lines = lines
                return
            if error != errno.ECONNREFUSED:
                raise OSError(error, os.strerror(error))
            self._close()
            self._index += 1
            sock = self._sock = self._open()
        raise ConnectionRefusedError(
            errno.ECONNREFUSED, f"nothing listens on {self.host}:{self.port}"
        )


class TCPTransport(NetworkTransport):
    """A TCP stream of newline-terminated lines.

    Writes are bounded by `timeout`; after any error the connection is closed, so a partly
    written line can never run into the next one. Before each write the socket is polled: an
    aggregator that closed the connection (a restart) is reconnected to before the payload is
    written, instead of the payload vanishing into a dead stream.
    """

    socktype = socket.SOCK_STREAM

    def __init__(
        self,
        host: str,
        port: int,
        stats: Stats,
        *,
        clock: Callable[[], float],
        resolver: Resolver,
        resolve_interval: float,
        timeout: float,
        family: int = 0,
    ) -> None:
        self._timeout = timeout
        super().__init__(
            host, port, stats, clock=clock, resolver=resolver, resolve_interval=resolve_interval,
            family=family,
        )  # fmt: skip

    def _open(self) -> socket.socket:
        """Connect to the first candidate that accepts, starting with the last one that did."""
        error: OSError | None = None
        for _ in range(len(self.candidates) or 1):
            family, address = self._address()  # raises when the host did not resolve
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.settimeout(self._timeout)
            try:
                sock.connect(address)
            except OSError as exc:
                sock.close()
                error = exc
                self._index += 1
            else:
                return sock
        assert error is not None
        raise error

    def _send(self, sock: socket.socket, payload: bytes, lines: int) -> None:
        _send_stream(self, sock, payload)


def _send_stream(transport: Transport, sock: socket.socket, payload: bytes) -> None:
    """Write newline-terminated lines to a stream; reconnect first if the peer has closed."""
    poller = select.poll()  # not select(): it fails on descriptors past 1024
    poller.register(sock, select.POLLIN)
    if poller.poll(0) and not sock.recv(1, socket.MSG_PEEK):
        transport._close()
        sock = transport._sock = transport._open()
    sock.sendall(payload + b"\n")


class UnixTransport(Transport):
    """A Unix socket: the aggregator on the same host without the IP stack.

    Datagram or stream, whichever the socket at `path` is: connecting a datagram socket to a
    stream socket fails with EPROTOTYPE, and the transport then connects as a stream (what the
    `statsd` package's `UnixSocketStatsClient` talks to), sending newline-terminated lines as
    over TCP, each connect and write bounded by `timeout`. On a datagram socket, a full
    receive queue is reported at once (`buffer_full`), unlike UDP on loopback.
    """

    def __init__(
        self, path: str, stats: Stats, clock: Callable[[], float], timeout: float = 1.0
    ) -> None:
        super().__init__(stats, clock)
        self.path = path
        self._timeout = timeout
        self.stream: bool | None = None  # not known until the first connect

    def _open(self) -> socket.socket:
        if not self.stream:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            try:
                sock.setblocking(False)
                sock.connect(self.path)
            except OSError as exc:
                sock.close()
                if exc.errno != errno.EPROTOTYPE:
                    raise
            else:
                self.stream = False
                return sock
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self._timeout)
            sock.connect(self.path)
        except OSError:
            sock.close()
            self.stream = None  # the path may be a datagram socket again next time
            raise
        self.stream = True
        return sock

    def _send(self, sock: socket.socket, payload: bytes, lines: int) -> None:
        if sock.type == socket.SOCK_STREAM:
            _send_stream(self, sock, payload)
        else:
            sock.send(payload)
