"""Batch reading with recvmmsg: every datagram whole and in order, the longest one's length."""

from __future__ import annotations

import socket

import pytest

from aggregator.recvmmsg import BATCH, BatchReader


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


def reader(slot: int) -> BatchReader:
    batch = BatchReader.create(slot)
    if batch is None:
        pytest.skip("no recvmmsg on this system")
    return batch


def test_datagrams_come_whole_in_order_with_the_longest_length(pair):
    sender, receiver = pair
    sent = [b"a:1|c", b"", b"b:2|ms\nc:3|g", b"x" * 100]
    for d in sent:
        sender.send(d)
    datagrams, longest = reader(200).read(receiver)
    assert [bytes(d) for d in datagrams] == sent
    assert longest == 100
    assert reader(200).read(receiver) == ([], 0)


def test_a_datagram_longer_than_the_slot_is_cut_to_the_slot(pair):
    sender, receiver = pair
    sender.send(b"y" * 300)
    datagrams, longest = reader(101).read(receiver)
    assert (len(datagrams[0]), longest) == (101, 101)


def test_one_read_takes_at_most_a_batch(pair):
    sender, receiver = pair
    for i in range(BATCH + 3):
        sender.send(b"n:%d|c" % i)
    batch = reader(64)
    first = [bytes(d) for d in batch.read(receiver)[0]]  # views into the reader's buffer
    second = [bytes(d) for d in batch.read(receiver)[0]]
    assert first == [b"n:%d|c" % i for i in range(BATCH)]
    assert second == [b"n:%d|c" % i for i in range(BATCH, BATCH + 3)]
