"""Batch datagram reading with Linux recvmmsg(2) through ctypes.

One system call fills up to `BATCH` slots of one preallocated buffer, so the per-datagram
cost in Python is a memoryview slice instead of a `recv` call and a fresh 64 KiB allocation.
This is what lets small datagrams (one counter each) reach several times the reference's rate.
A batch of 256 rather than 64 spreads the ctypes call and the per-batch work of the parser
over more datagrams (-7% instructions per one-counter datagram; beyond 256 nothing is won).
On systems without recvmmsg, `BatchReader.create` returns None and the caller uses `recv`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import mmap
import socket

BATCH = 256


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
        # Anonymous mmap: pages are only made resident when the kernel writes into them, so
        # a slot costs one page for a small datagram however large `slot` is.
        self.buffer = mmap.mmap(-1, slot * BATCH)
        self.view = memoryview(self.buffer)
        self.iovecs = (_IoVec * BATCH)()
        self.headers = (_MMsgHdr * BATCH)()
        base = ctypes.addressof(ctypes.c_char.from_buffer(self.buffer))
        for i in range(BATCH):
            self.iovecs[i].base = base + i * slot
            self.iovecs[i].len = slot
            self.headers[i].hdr.iov = ctypes.pointer(self.iovecs[i])
            self.headers[i].hdr.iovlen = 1
        words = memoryview(self.headers).cast("B").cast("I")
        stride = ctypes.sizeof(_MMsgHdr) // 4
        self._lengths = words[_MMsgHdr.len.offset // 4 :: stride]
        self._address = ctypes.addressof(self.headers)
        self.offsets = [i * slot for i in range(BATCH)]

    @classmethod
    def create(cls, slot: int) -> BatchReader | None:
        return cls(slot) if _recvmmsg is not None else None

    def read(self, sock: socket.socket) -> tuple[list[memoryview], int]:
        """The datagrams waiting on non-blocking `sock` (at most BATCH) and the longest one's
        length; ([], 0) when none.

        A datagram longer than the slot is cut to the slot's length: the caller makes the
        slot one byte larger than the largest datagram it accepts, so a cut one is rejected.
        """
        n = _recvmmsg(sock.fileno(), self._address, BATCH, 0, None)
        if n <= 0:
            err = ctypes.get_errno()
            if n < 0 and err not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR):
                raise OSError(err, "recvmmsg failed")
            return [], 0
        view = self.view
        lengths = self._lengths[:n].tolist()  # ints made in C, not one by one by the loop
        datagrams = [view[o : o + n] for o, n in zip(self.offsets, lengths, strict=False)]
        return datagrams, max(lengths)
