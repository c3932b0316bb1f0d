"""Batch reading with recvmmsg: every datagram whole and in order, joined with newlines."""

from __future__ import annotations

import socket

import pytest

from aggregator.recvmmsg import BATCH, NEAR, BatchReader


@pytest.fixture
def pair():
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    receiver.bind(("127.0.0.1", 0))
    receiver.setblocking(False)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.connect(receiver.getsockname())
    yield sender, receiver
    sender.close()
    receiver.close()


def reader(slot: int = 65536) -> BatchReader:
    batch = BatchReader.create(slot)
    if batch is None:
        pytest.skip("no recvmmsg on this system")
    return batch


def send_and_read(pair, datagrams: list[bytes], batch: BatchReader) -> tuple:
    sender, receiver = pair
    for d in datagrams:
        sender.send(d)
    return batch.read(receiver)


def test_short_datagrams_come_joined_in_order(pair):
    sent = [b"a:1|c", b"", b"b:2|ms\nc:3|g", b"x" * (NEAR - 1)]
    assert send_and_read(pair, sent, reader()) == (b"\n".join(sent), 4, 0, NEAR - 1)
    assert reader().read(pair[1]) == (b"", 0, 0, 0)


def test_long_datagrams_and_nul_bytes_come_whole(pair):
    batch = reader()
    long = bytes(range(1, 256)) * 3  # longer than a compact slot, no NUL
    with_nul = b"a:1|c\x00"
    sent = [b"s:1|c", long, b"", with_nul, b"t:2|c"]
    assert send_and_read(pair, sent, batch) == (b"\n".join(sent), 5, 0, len(long))
    sent = [with_nul, b"u:3|c"]  # only short ones, one with its own NUL
    assert send_and_read(pair, sent, batch) == (b"\n".join(sent), 2, 0, len(with_nul))


def test_slots_hold_nothing_of_an_earlier_batch(pair):
    batch = reader()
    send_and_read(pair, [b"y" * 300, b"z" * 100], batch)
    assert send_and_read(pair, [b"a", b"b"], batch) == (b"a\nb", 2, 0, 1)


@pytest.mark.parametrize("slot", [101, 1001])
def test_a_datagram_longer_than_the_slot_is_left_out_and_counted(pair, slot: int):
    sent = [b"k:1|c", b"y" * (slot + 50), b"w" * (slot - 1)]
    data, count, cut, longest = send_and_read(pair, sent, reader(slot))
    assert (data, count, cut, longest) == (b"k:1|c\n" + b"w" * (slot - 1), 3, 1, slot)


def test_one_read_takes_at_most_a_batch(pair):
    sent = [b"n:%d|c" % i for i in range(BATCH + 3)]
    batch = reader()
    first = send_and_read(pair, sent, batch)
    assert first == (b"\n".join(sent[:BATCH]), BATCH, 0, len(sent[BATCH - 1]))
    assert batch.read(pair[1])[:3] == (b"\n".join(sent[BATCH:]), 3, 0)
