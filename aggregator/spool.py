"""A bounded on-disk spool of flushes that could not reach Carbon.

One file per flush payload, named `<sequence>-<flush ts>.txt`, so the order and age are in the
name and a restart picks up where the last process left off. Payloads keep their original
timestamps; replaying a payload twice is harmless because Whisper keeps one value per
timestamp. Whatever the byte or age limits (or a full disk) throw away is counted and logged.
"""

from __future__ import annotations

import builtins
import contextlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("aggregator.spool")


def _lines(payload: list[bytes]) -> int:
    return sum(chunk.count(b"\n") for chunk in payload)


@dataclass(frozen=True)
class Entry:
    path: Path
    ts: int
    size: int
    lines: int | None = None  # known for flushes spooled by this process


class Spool:
    def __init__(self, directory: Path, max_bytes: int, max_age: float) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.max_age = max_age
        self.dropped_payloads = 0
        self.dropped_lines = 0
        self.entries: list[Entry] = []
        self._sequence = 0
        try:
            directory.mkdir(parents=True, exist_ok=True)
            self._load()
        except OSError as exc:
            log.error("spool directory %s is unusable: %s", directory, exc)

    def _load(self) -> None:
        for path in self.directory.glob("*.tmp"):  # a write cut short by a kill
            ts = path.stem.partition("-")[2]
            with contextlib.suppress(OSError):
                lines = path.read_bytes().count(b"\n")
                path.unlink()
                self._lost(int(ts) if ts.isdigit() else 0, lines, "half-written by a killed daemon")
        for path in sorted(self.directory.glob("*.txt")):
            sequence, _, ts = path.stem.partition("-")
            if sequence.isdigit() and ts.isdigit():
                self.entries.append(Entry(path, int(ts), path.stat().st_size))
                self._sequence = max(self._sequence, int(sequence))
        if self.entries:
            log.info("spool %s holds %d unsent flushes", self.directory, len(self.entries))

    @property
    def bytes(self) -> int:
        return sum(e.size for e in self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def _lost(self, ts: int, lines: int, why: str) -> None:
        self.dropped_payloads += 1
        self.dropped_lines += lines
        log.warning("spool: dropped the flush of ts %d (%d lines): %s", ts, lines, why)

    def _drop(self, entry: Entry, why: str) -> None:
        lines = entry.lines or 0
        try:
            if entry.lines is None:  # left by an earlier process: count what the file holds
                with entry.path.open("rb") as f:
                    lines = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
            entry.path.unlink()
        except OSError:
            pass
        self.entries.remove(entry)
        self._lost(entry.ts, lines, why)

    def add(self, payload: list[builtins.bytes], ts: int) -> None:  # not the property below
        size = sum(map(len, payload))
        if size > self.max_bytes:
            self._lost(ts, _lines(payload), "larger than spool_max_bytes")
            return
        while self.entries and self.bytes + size > self.max_bytes:
            self._drop(self.entries[0], "spool_max_bytes reached")
        self._sequence += 1
        path = self.directory / f"{self._sequence:012d}-{ts}.txt"
        tmp = path.with_suffix(".tmp")
        try:
            with tmp.open("wb") as f:
                f.writelines(payload)
            os.replace(tmp, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            self._lost(ts, _lines(payload), f"cannot write to the spool: {exc}")
            return
        self.entries.append(Entry(path, ts, size, _lines(payload)))

    def expire(self, now: float | None = None) -> None:
        limit = (time.time() if now is None else now) - self.max_age
        for entry in [e for e in self.entries if e.ts < limit]:
            self._drop(entry, "older than spool_max_age")

    def oldest(self) -> tuple[Entry, builtins.bytes] | None:
        """The next payload to replay, after expiring what is too old."""
        self.expire()
        while self.entries:
            entry = self.entries[0]
            try:
                return entry, entry.path.read_bytes()
            except OSError as exc:
                self._drop(entry, f"unreadable: {exc}")
        return None

    def remove(self, entry: Entry) -> None:
        entry.path.unlink(missing_ok=True)
        self.entries.remove(entry)
