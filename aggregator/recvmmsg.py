"""Batch datagram reading with Linux recvmmsg(2) through ctypes.

One system call reads up to `BATCH` datagrams into preallocated buffers, instead of a `recv`
call and a fresh 64 KiB allocation per datagram. This is what lets small datagrams (one counter
each) reach several times the reference's rate. A batch of 256 rather than 64 spreads the
ctypes call and the parser's per-batch work over more datagrams (-7% instructions per
one-counter datagram; beyond 256 nothing is won).

Each datagram is read in two pieces: its first NEAR - 1 bytes into a compact slot that begins
with a newline and is otherwise NUL, the rest (if any) into a large slot of its own. When every
datagram of a batch fits its compact slot (StatsD datagrams with one metric are 30 to 80
bytes), the newline-joined text the parser wants is one copy of the compact slots with the
NULs deleted, at C speed and without a Python object per datagram: ~85 ns per datagram where
a memoryview slice per datagram and a join cost ~150 ns. A NUL inside a datagram shows as a
length mismatch, and a longer datagram as its length: both take the general path, which
slices and joins.
Source addresses, for the log of rejected lines: the kernel can write each datagram's address
into a slot of its own, which `sender` reads only for a rejected line. That costs ~60 to 80 ns
a datagram here (~11% of a read), so it is done for every read except full batches
(the receiver at its limit, where each nanosecond is throughput), and for those too during the
minute after a rejected line was logged (`keep_addresses`). So addresses cost nothing at the
limit, and only the first rejected line of a burst at the limit can lack its sender.
On systems without recvmmsg, `BatchReader.create` returns None and the caller uses `recvfrom`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import mmap
import socket
import sys
import time

BATCH = 256
NEAR = 128  # bytes of a compact slot: a newline, then up to 127 bytes of one datagram
ADDRESS = 128  # bytes of a source address slot (struct sockaddr_storage)


class _IoVec(ctypes.Structure):
    _fields_ = (("base", ctypes.c_void_p), ("len", ctypes.c_size_t))


class _MsgHdr(ctypes.Structure):
    _fields_ = (
        ("name", ctypes.c_void_p),
        ("namelen", ctypes.c_uint32),
        ("iov", ctypes.POINTER(_IoVec)),
        ("iovlen", ctypes.c_size_t),
        ("control", ctypes.c_void_p),
        ("controllen", ctypes.c_size_t),
        ("flags", ctypes.c_int),
    )


class _MMsgHdr(ctypes.Structure):
    _fields_ = (("hdr", _MsgHdr), ("len", ctypes.c_uint))


_HEADER = ctypes.sizeof(_MMsgHdr)


def _libc_recvmmsg():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        fn = libc.recvmmsg
    except (OSError, AttributeError):
        return None
    fn.argtypes = (ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_void_p)
    fn.restype = ctypes.c_int
    return fn


_recvmmsg = _libc_recvmmsg()


class BatchReader:
    """Reusable buffers for reading up to BATCH datagrams of up to `slot` bytes at once."""

    def __init__(self, slot: int) -> None:
        self.slot = slot
        self.near_len = min(NEAR - 1, slot)  # datagram bytes a compact slot holds
        far_len = slot - self.near_len
        self.pristine = (b"\n" + bytes(NEAR - 1)) * BATCH
        self.near = ctypes.create_string_buffer(self.pristine, len(self.pristine))
        self.near_view = memoryview(self.near).cast("B")  # bytes copy of the used part
        # Anonymous mmap: its pages only become resident when a long datagram is written.
        self.far = mmap.mmap(-1, max(far_len, 1) * BATCH)
        self.iovecs = (_IoVec * (2 * BATCH))()
        self.headers = (_MMsgHdr * BATCH)()
        self.addresses = ctypes.create_string_buffer(ADDRESS * BATCH)
        near, far = (
            ctypes.addressof(self.near),
            ctypes.addressof(ctypes.c_char.from_buffer(self.far)),
        )
        for i in range(BATCH):
            self.iovecs[2 * i].base = near + i * NEAR + 1
            self.iovecs[2 * i].len = self.near_len
            self.iovecs[2 * i + 1].base = far + i * far_len
            self.iovecs[2 * i + 1].len = far_len
            self.headers[i].hdr.iov = ctypes.pointer(self.iovecs[2 * i])
            self.headers[i].hdr.iovlen = 2 if far_len else 1
            self.headers[i].hdr.name = ctypes.addressof(self.addresses) + i * ADDRESS
            self.headers[i].hdr.namelen = ADDRESS
        # Two images of the headers, with and without address slots. The kernel shortens each
        # address length it writes to the address it stored: the headers it wrote are
        # restored from the image in use before the next read.
        self.with_addresses = bytes(self.headers)
        for i in range(BATCH):
            self.headers[i].hdr.name, self.headers[i].hdr.namelen = None, 0
        self.without_addresses = bytes(self.headers)
        ctypes.memmove(self.headers, self.with_addresses, len(self.with_addresses))
        self.pristine_headers = self.with_addresses
        self.used = 0  # headers to restore before the next read
        self.lengths: list[int] = []  # datagram lengths of the last read
        self.addressed = False  # whether the last read recorded source addresses
        self.want_addresses = True  # for the next read
        self.keep_until = 0.0  # time.monotonic() until which full batches record them too
        words = memoryview(self.headers).cast("B").cast("I")
        stride = ctypes.sizeof(_MMsgHdr) // 4
        self._lengths = words[_MMsgHdr.len.offset // 4 :: stride]
        self._address = ctypes.addressof(self.headers)
        near_view, far_view = self.near_view, memoryview(self.far)
        self.near_slots = [near_view[i * NEAR + 1 : (i + 1) * NEAR] for i in range(BATCH)]
        self.far_slots = [far_view[i * far_len : (i + 1) * far_len] for i in range(BATCH)]

    @classmethod
    def create(cls, slot: int) -> BatchReader | None:
        return cls(slot) if _recvmmsg is not None else None

    def read(self, sock: socket.socket) -> tuple[bytes, int, int, int]:
        """What is waiting on non-blocking `sock` (at most BATCH datagrams): the datagrams
        joined with newlines, how many were read, how many of them were cut (left out of the
        text) and the longest one's length; (b"", 0, 0, 0) when none.

        A datagram longer than the slot is cut to the slot's length: the caller makes the
        slot one byte larger than the largest datagram it accepts, so a cut one is one too
        long to accept.
        """
        image = self.with_addresses if self.want_addresses else self.without_addresses
        if image is not self.pristine_headers:
            self.pristine_headers, self.used = image, BATCH  # every header changes
        if self.used:
            ctypes.memmove(self.headers, self.pristine_headers, self.used * _HEADER)
            self.used = 0
        n = _recvmmsg(sock.fileno(), self._address, BATCH, 0, None)
        if n <= 0:
            err = ctypes.get_errno()
            if n < 0 and err not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR):
                raise OSError(err, "recvmmsg failed")
            return b"", 0, 0, 0
        lengths = self._lengths[:n].tolist()  # ints made in C, not one by one by a loop
        self.lengths = lengths
        self.addressed = self.want_addresses
        if self.addressed:
            self.used = n  # the kernel shortened these address lengths: restore them
        self.want_addresses = n < BATCH or time.monotonic() < self.keep_until
        longest = max(lengths)
        used = n * NEAR
        if longest <= self.near_len and longest < self.slot:
            text = self.near_view[:used].tobytes().translate(None, b"\0")
            if len(text) == n + sum(lengths):  # no NUL of a datagram's own was deleted
                ctypes.memmove(self.near, self.pristine, used)  # the slots are NUL again
                return text[1:], n, 0, longest
        pieces: list = []
        short, near, far, kept = self.near_len, self.near_slots, self.far_slots, 0
        for i, size in enumerate(lengths):
            if size >= self.slot:
                continue  # cut
            kept += 1
            if size <= short:
                pieces += (b"\n", near[i][:size])
            else:
                pieces += (b"\n", near[i], far[i][: size - short])
        data = b"".join(pieces[1:])  # without the first separator
        ctypes.memmove(self.near, self.pristine, used)
        return data, n, n - kept, longest

    def keep_addresses(self, seconds: float) -> None:
        """Record source addresses in full batches too, for `seconds` from now."""
        self.keep_until = time.monotonic() + seconds
        self.want_addresses = True

    def sender(self, data: bytes, needle: bytes | None) -> str | None:
        """The source address of the datagram of the last read that holds `needle` in `data`
        (what read() returned), the first such one; with `needle` None, of the first datagram
        that was cut. None when there is none, or the read recorded no addresses. Only called
        for rejected lines."""
        if not self.addressed:
            return None
        offset = 0
        position = -1 if needle is None else data.find(needle)
        for i, size in enumerate(self.lengths):
            cut = size >= self.slot
            if needle is None and cut:
                return self.address(i)
            if position >= 0 and not cut:
                if position <= offset + size:
                    return self.address(i)
                offset += size + 1
        return None

    def address(self, i: int) -> str:
        namelen = min(self.headers[i].hdr.namelen, ADDRESS)
        return format_address(self.addresses.raw[i * ADDRESS : i * ADDRESS + namelen])


def format_address(raw: bytes) -> str:
    """A struct sockaddr as the log shows it: `127.0.0.1:5000`, `[::1]:5000`, a Unix path."""
    if len(raw) < 2:
        return "an unnamed Unix socket"
    family = int.from_bytes(raw[:2], sys.byteorder)
    if family == socket.AF_INET and len(raw) >= 8:
        return f"{socket.inet_ntop(socket.AF_INET, raw[4:8])}:{int.from_bytes(raw[2:4], 'big')}"
    if family == socket.AF_INET6 and len(raw) >= 24:
        host = socket.inet_ntop(socket.AF_INET6, raw[8:24])
        return f"[{host}]:{int.from_bytes(raw[2:4], 'big')}"
    if family == socket.AF_UNIX:
        path = raw[2:]
        if path[:1] == b"\0":  # abstract namespace
            return "@" + path[1:].decode(errors="replace")
        return path.split(b"\0")[0].decode(errors="replace") or "an unnamed Unix socket"
    return f"address family {family}"
