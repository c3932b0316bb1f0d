"""Fixtures for the reliability tests: the aggregator's black-box fixtures, a steady sender, a
Carbon that accepts and stops reading, and what reached Carbon, counted as Whisper keeps it.

Everything on 127.0.0.1 and free ports; every loop is bounded; processes stopped by PID.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from support.net import CarbonSink as Sink
from support.net import wait_until
from support.pipeline import start_up
from tests.aggregator.conftest import sink, start_daemon

__all__ = ["Sink", "sink", "start_daemon", "start_up", "wait_until"]  # fixtures, and for tests


class Sender(threading.Thread):
    """Sends `datagram` to 127.0.0.1:`port` every `pause` seconds until stopped (or `limit`
    datagrams, or `seconds`); `sent` is exact, for comparing with what reaches Carbon."""

    def __init__(
        self, port: int, datagram: bytes, pause: float = 0.005, limit: int = 100_000,
        seconds: float = 60.0,
    ) -> None:  # fmt: skip
        super().__init__(daemon=True)
        self.port, self.datagram, self.pause = port, datagram, pause
        self.limit, self.seconds = limit, seconds
        self.sent = 0
        self.stopped = threading.Event()
        self.start()

    def run(self) -> None:
        deadline = time.monotonic() + self.seconds
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            while self.sent < self.limit and time.monotonic() < deadline:
                if self.stopped.wait(self.pause):
                    return
                sock.sendto(self.datagram, ("127.0.0.1", self.port))
                self.sent += 1

    def stop(self) -> int:
        self.stopped.set()
        self.join(10)
        return self.sent


class StalledCarbon:
    """A Carbon that accepts connections and never reads them (a hung carbon-cache).

    Its receive buffer is small, so what its kernel acknowledges without it reading is small
    and known: `unread()` peeks at it without taking it (taking it would let more in).
    """

    RCVBUF = 4096

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.RCVBUF)  # inherited
        self.port = self.server.getsockname()[1]
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.connections.append(conn)

    def stop_accepting(self) -> None:
        with contextlib.suppress(OSError):  # wakes the accepting thread, which holds the port
            self.server.shutdown(socket.SHUT_RDWR)
        self.server.close()

    def unread(self) -> list[str]:
        """The lines its kernel acknowledged and it never read, whole lines only."""
        lines = []
        for conn in self.connections:
            with contextlib.suppress(OSError):
                data = conn.recv(1 << 20, socket.MSG_PEEK | socket.MSG_DONTWAIT)
                lines += [line.decode() for line in data.split(b"\n")[:-1]]
        return lines

    def receive_buffers(self) -> int:
        """The most its kernel can have acknowledged unread, over all its connections."""
        return sum(c.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) for c in self.connections)

    def die(self) -> None:
        """Gone, unread data and all (the kernel resets the connections)."""
        self.stop_accepting()
        for conn in self.connections:
            conn.close()


def stored(lines: Iterable[str], path: str) -> dict[int, float]:
    """{timestamp: value} of one series as Whisper would keep it (one value per timestamp)."""
    points: dict[int, float] = {}
    for line in lines:
        name, value, ts = line.split(" ")
        if name == path:
            points[int(ts)] = float(value)
    return points


def arrivals(lines: Iterable[str], path: str) -> list[int]:
    """The timestamps of one series, in the order they arrived."""
    return [int(line.split(" ")[2]) for line in lines if line.startswith(f"{path} ")]


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it (children of any of its threads)."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            with contextlib.suppress(OSError):
                queue += [int(c) for c in (task / "children").read_text().split()]
    return found


def _socket_inodes(pids: Iterable[int]) -> set[int]:
    inodes = set()
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").glob("*"):
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(int(target[8:-1]))
    return inodes


def _address(hex_address: str) -> str:
    raw = bytes.fromhex(hex_address)
    if len(raw) == 4:
        return str(ipaddress.IPv4Address(raw[::-1]))
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))  # 4 host-order words
    return str(ipaddress.IPv6Address(words))


def listeners(pid: int) -> set[tuple[str, str, int]]:
    """What the process tree of `pid` listens on: ("tcp" or "udp", address, port) for TCP
    sockets in LISTEN and unconnected bound UDP sockets (IPv4 and IPv6), and ("unix", path, 0)
    for Unix sockets with a path."""
    inodes = _socket_inodes(descendants(pid))
    found = set()
    for table, proto, listening in (("tcp", "tcp", "0A"), ("tcp6", "tcp", "0A"),
                                    ("udp", "udp", "07"), ("udp6", "udp", "07")):  # fmt: skip
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[9]) in inodes and fields[3] == listening:
                address, port = fields[1].split(":")
                found.add((proto, _address(address), int(port, 16)))
    for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
        fields = line.split()
        if len(fields) > 7 and int(fields[6]) in inodes:
            found.add(("unix", fields[7], 0))
    return found
