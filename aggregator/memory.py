"""Giving freed memory back to the operating system after a large hand-off or flush.

glibc keeps freed heap pages, so without this each flush would start from the previous
flush's high-water mark (measured: 175 MiB kept after a 100k-timer flush, 66 MiB after a trim).
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable

_malloc_trim: Callable[[int], int] | None
try:
    _malloc_trim = ctypes.CDLL(ctypes.util.find_library("c") or None).malloc_trim
except (OSError, AttributeError):  # not glibc: nothing to do
    _malloc_trim = None


def release_memory() -> None:
    if _malloc_trim is not None:
        _malloc_trim(0)
