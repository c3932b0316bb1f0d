"""Listening sockets and the receiving processes that parse into partial aggregates.

Several receiver processes read the same UDP socket, so the load spreads evenly over the
cores whatever the number of senders (SO_REUSEPORT would pin each sender to one process, and a
busy sender to one core). Each batch is read under a lock that also hands out a global batch
sequence number, which lets the flusher replay gauge writes in arrival order (see
state.Gauge). Each receiver parses into its own `Interval` and hands it to the flusher over a
pipe when asked, so a flush never stops the reading: the other receivers keep reading while
one pickles its interval, and the flusher computes in its own process. Receiver 0 also serves
the TCP line streams and the Unix datagram socket.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import multiprocessing
import os
import selectors
import signal
import socket
import stat
import tempfile
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import cast

from .config import Config
from .memory import release_memory
from .parse import Parser
from .recvmmsg import BATCH, BatchReader, format_address
from .rejections import WINDOW, message, needles
from .state import Interval

log = logging.getLogger("aggregator.receive")

_DRAIN = 512  # datagrams read per readiness event before looking at the control pipe
# After a read that emptied the socket, wait this long before the next one, so datagrams
# arrive in batches: one wake-up, lock and recvmmsg call per many datagrams instead of per
# one or two (the receivers share the socket and would otherwise all wake for each one).
# StatsD data waits for the next flush anyway; the 8 MiB buffer holds seconds of traffic.
_COALESCE = 0.002
# At shutdown, how long a receiver may spend reading what the kernel still holds for it: what
# was sent before the stop must reach the final flush, but a flood must not hold the exit up.
STOP_DRAIN = 0.5


class ListenError(RuntimeError):
    """A listening socket could not be opened; the message names the address and port."""


class Sequence:
    """A lock for reading a batch plus the global batch counter, shared by the receivers.

    A POSIX record lock (lockf) rather than a semaphore: the kernel releases it if a receiver
    dies while holding it, so the others never hang.
    """

    def __init__(self) -> None:
        self.file = tempfile.TemporaryFile()  # noqa: SIM115  (lives as long as the daemon)
        self.counter = multiprocessing.get_context("fork").RawValue("Q", 0)

    def __enter__(self) -> int:
        fcntl.lockf(self.file, fcntl.LOCK_EX)
        seq = self.counter.value
        self.counter.value = seq + 1
        return seq

    def __exit__(self, *exc: object) -> None:
        fcntl.lockf(self.file, fcntl.LOCK_UN)


@dataclass
class Listeners:
    """All input sockets, opened before the receivers fork so errors stop the start."""

    udp: list[socket.socket] = field(default_factory=list)  # read by every receiver
    tcp: socket.socket | None = None
    unix: socket.socket | None = None

    def for_receiver(self, index: int) -> list[socket.socket]:
        extra = [s for s in (self.tcp, self.unix) if s is not None] if index == 0 else []
        return self.udp + extra

    def close(self) -> None:
        if self.unix is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.unix.getsockname())
        for s in [*self.udp, self.tcp, self.unix]:
            if s is not None:
                s.close()


def _address(host: str, port: int, kind: socket.SocketKind) -> tuple[int, tuple]:
    try:
        family, _, _, _, sockaddr = socket.getaddrinfo(host, port, type=kind)[0]
    except socket.gaierror as exc:
        raise ListenError(f"cannot resolve listen address {host!r}: {exc.strerror}") from exc
    return family, sockaddr


def _bind_error(what: str, host: str, port: int, exc: OSError) -> ListenError:
    why = "already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
    return ListenError(f"cannot listen on {what} {host} port {port}: {why}")


def _receive_buffer(sock: socket.socket, wanted: int, what: str) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, wanted)
    granted = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    level = logging.INFO if granted >= wanted else logging.WARNING
    log.log(level, "%s receive buffer: asked %d bytes, kernel granted %d", what, wanted, granted)


def udp_socket(host: str, port: int, buffer: int) -> socket.socket:
    family, sockaddr = _address(host, port, socket.SOCK_DGRAM)
    sock = socket.socket(family, socket.SOCK_DGRAM)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    try:
        sock.bind(sockaddr)
    except OSError as exc:
        sock.close()
        raise _bind_error("UDP", host, port, exc) from exc
    _receive_buffer(sock, buffer, f"UDP {host}:{port}")
    return sock


def tcp_listener(host: str, port: int) -> socket.socket:
    family, sockaddr = _address(host, port, socket.SOCK_STREAM)
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(sockaddr)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise _bind_error("TCP", host, port, exc) from exc
    return sock


def unix_socket(path: str, buffer: int) -> socket.socket:
    if os.path.exists(path):
        if not stat.S_ISSOCK(os.stat(path).st_mode):
            raise ListenError(f"cannot listen on Unix socket {path}: not a socket")
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as probe:
            try:
                probe.connect(path)
            except OSError:
                os.unlink(path)  # stale, left by a process that is gone
            else:
                raise ListenError(f"cannot listen on Unix socket {path}: already in use")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.bind(path)
    except OSError as exc:
        sock.close()
        raise ListenError(f"cannot listen on Unix socket {path}: {exc.strerror}") from exc
    _receive_buffer(sock, buffer, f"Unix {path}")
    return sock


def open_listeners(config: Config) -> Listeners:
    listeners = Listeners()
    try:
        listeners.udp.append(udp_socket(config.bind, config.port, config.receive_buffer))
        if config.bind_ipv6:
            listeners.udp.append(udp_socket(config.bind_ipv6, config.port, config.receive_buffer))
        if config.tcp_port:
            listeners.tcp = tcp_listener(config.bind, config.tcp_port)
        if config.unix_socket:
            listeners.unix = unix_socket(config.unix_socket, config.receive_buffer)
    except ListenError:
        listeners.close()
        raise
    return listeners


class Receiver:
    """The loop of one receiving process: read sockets, parse, answer the flusher's pipe."""

    def __init__(
        self, sockets: list[socket.socket], control: Connection, config: Config, seq: Sequence
    ):
        self.sockets = sockets
        self.control = control
        self.sequence = seq
        self.parser = Parser(config)
        self._limits(config)
        self.interval = Interval()
        self.streams: dict[socket.socket, bytes] = {}
        self.peers: dict[socket.socket, str] = {}  # TCP connection -> sender, for the log
        self.selector = selectors.DefaultSelector()

    def configure(self, config: Config) -> None:
        """A reloaded configuration (SIGHUP)."""
        self.parser.configure(config)
        self._limits(config)

    def _limits(self, config: Config) -> None:
        self.max_line = config.max_line_length
        self.bufsize = config.max_datagram_size + 1  # one more byte reveals an oversized one
        self.batch = BatchReader.create(self.bufsize)

    def run(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)  # the flusher asks for the final hand-off
        for sock in self.sockets:
            sock.setblocking(False)
            self.selector.register(sock, selectors.EVENT_READ)
        self.selector.register(self.control, selectors.EVENT_READ)
        while True:
            for key, _ in self.selector.select():
                sock = cast(socket.socket, key.fileobj)  # or the control pipe
                if sock is self.control:
                    if not self.command():
                        return
                elif sock.type == socket.SOCK_DGRAM:
                    self.drain(sock)
                elif sock in self.streams:
                    self.stream(sock)
                else:
                    self.accept(sock)

    def drain(self, sock: socket.socket) -> bool:
        """Read what is waiting (bounded, so the control pipe is never starved); True when
        the bound was reached (more may be waiting), False once the socket was empty."""
        iv, sequence, rejected = self.interval, self.sequence, self.parser.rejected
        try:
            if self.batch is not None:
                read, feed = self.batch.read, self.parser.feed_joined
                for _ in range(_DRAIN // BATCH):
                    with sequence as iv.seq:
                        data, count, cut, longest = read(sock)
                    if count:
                        feed(data, count, cut, longest, iv)
                        if rejected:  # before the next read, which reuses the addresses
                            self.log_rejected(data)
                    if count < BATCH:
                        time.sleep(_COALESCE)
                        return False
            else:
                recv, size, feed_many = sock.recvfrom, self.bufsize, self.parser.feed_many
                for _ in range(_DRAIN):
                    with sequence as iv.seq:
                        data, address = recv(size)
                    feed_many((data,), iv)
                    if rejected:
                        self.log_rejected(data, _format(address))
        except BlockingIOError:
            time.sleep(_COALESCE)
        except OSError as exc:  # e.g. ECONNREFUSED bounced to a UDP socket: not fatal
            log.debug("receive error: %s", exc)
        else:
            return True
        return False

    def log_rejected(self, data: bytes, sender: str | None = None) -> None:
        """Log the rejected lines the parser kept with their sender: `sender` when the caller
        knows it, else the batch reader finds the datagram of the last read that held the
        line (the first one: another sender of the very same line may be named instead)."""
        for item in self.parser.rejected:
            found = sender
            if found is None and self.batch is not None:
                self.batch.keep_addresses(WINDOW)  # so the next ones can be named
                candidates: list[bytes | None] = [*needles(item)] or [None]
                for needle in candidates:
                    found = self.batch.sender(data, needle)
                    if found:
                        break
            log.warning("%s", message(item, found))
        self.parser.rejected.clear()

    def drain_backlog(self) -> None:
        """At shutdown, read what the kernel still holds: it was sent before the stop."""
        deadline = time.monotonic() + STOP_DRAIN
        for sock in self.sockets:
            if sock.type == socket.SOCK_DGRAM:
                while self.drain(sock) and time.monotonic() < deadline:
                    pass
        while time.monotonic() < deadline and sum(map(self.stream, list(self.streams))):
            pass

    def accept(self, listener: socket.socket) -> None:
        try:
            conn, address = listener.accept()
        except OSError:
            return
        conn.setblocking(False)
        self.streams[conn] = b""
        self.peers[conn] = f"TCP {_format(address)}"
        self.selector.register(conn, selectors.EVENT_READ)

    def stream(self, conn: socket.socket) -> bool:
        """TCP: everything up to the last newline is one packet, as in the reference. True
        when data was read."""
        try:
            data = conn.recv(65536)
        except BlockingIOError:
            return False
        except OSError:
            data = b""
        buffered = self.streams[conn] + data
        if not data:  # end of stream: a last line without newline is still a line
            self.selector.unregister(conn)
            del self.streams[conn]
            peer = self.peers.pop(conn, None)
            conn.close()
            if buffered:
                self._feed_stream(buffered, peer)
            return False
        peer = self.peers.get(conn)
        cut = buffered.rfind(b"\n") + 1
        if cut:
            self._feed_stream(buffered[:cut], peer)
            buffered = buffered[cut:]
        if len(buffered) > self.max_line:
            self.interval.metrics += 1
            self.parser.reject("line_too_long", buffered[: self.max_line + 1], self.interval)
            buffered = b""
            if self.parser.rejected:
                self.log_rejected(b"", peer or "TCP")
        self.streams[conn] = buffered
        return True

    def _feed_stream(self, packet: bytes, peer: str | None) -> None:
        with self.sequence as seq:  # a place in the global order, like a datagram batch
            self.interval.seq = seq
        self.parser.feed(packet, self.interval)
        if self.parser.rejected:
            self.log_rejected(packet, peer or "TCP")

    def command(self) -> bool:
        """Handle one message from the flusher; False when this process should exit."""
        try:
            message = self.control.recv()
        except (EOFError, OSError):
            return False  # the flusher is gone
        action, arg = message
        if action in ("flush", "stop"):
            if action == "stop":
                self.drain_backlog()
            interval, self.interval = self.interval, Interval()
            self.control.send(("flush", interval))
            del interval
            release_memory()
            return action == "flush"
        if action == "peek":  # the live interval, for the mgmt dumps; kept
            self.control.send(("peek", self.interval))
        if action == "delete":
            kind, patterns = arg
            self.interval.drop(kind, patterns)
        elif action == "config":
            self.configure(arg)
        return True


def _format(address: object) -> str:
    """A socket module address (a tuple, or a Unix path) as the log shows it."""
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    if isinstance(address, bytes):
        return format_address(address)
    return str(address) or "an unnamed Unix socket"


def run_receiver(
    sockets: list[socket.socket],
    control: Connection,
    config: Config,
    seq: Sequence,
    inherited: list,
) -> None:
    """Process entry point. `inherited`: the flusher's descriptors that came with the fork;
    closing them lets this process see its pipe's end-of-file when the flusher dies, and
    frees the management port with it."""
    for obj in inherited:
        with contextlib.suppress(OSError):
            obj.close()
    with contextlib.suppress(KeyboardInterrupt):
        Receiver(sockets, control, config, seq).run()
