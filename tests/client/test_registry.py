"""The registry asks of a client only `registry.Member`'s public methods: a stand-in with those
three and nothing else is redirected as test recorders nest and told after a fork, exactly as
a Client is."""

from __future__ import annotations

import os

from statsd_metrics import registry


class StandIn:
    """A registry member with only the public interface (no Client insides to reach into)."""

    def __init__(self) -> None:
        self.captures: list[object] = []
        self.forks = 0
        self.closes = 0

    def redirect(self, capture: registry.Capture | None) -> None:
        self.captures.append(capture)

    def after_fork(self) -> None:
        self.forks += 1

    def close(self) -> None:
        self.closes += 1


def test_nested_captures_reach_a_member_through_redirect():
    member = StandIn()
    registry.register(member)
    outer: list[str] = []
    inner: list[str] = []
    try:
        registry.push_capture(outer.append)
        registry.push_capture(inner.append)
        registry.pop_capture(inner.append)
        registry.pop_capture(outer.append)
    finally:
        registry.unregister(member)
    assert member.captures == [None, outer.append, inner.append, outer.append, None]


def test_a_member_registered_while_capturing_starts_captured():
    lines: list[str] = []
    registry.push_capture(lines.append)
    member = StandIn()
    try:
        registry.register(member)
    finally:
        registry.pop_capture(lines.append)
        registry.unregister(member)
    assert member.captures[0] == lines.append


def test_a_forked_child_calls_after_fork_on_each_member():
    member = StandIn()
    registry.register(member)
    read_end, write_end = os.pipe()
    try:
        pid = os.fork()
        if pid == 0:  # the child: report what the registry did, then leave at once
            os.write(write_end, str(member.forks).encode())
            os._exit(0)
        os.close(write_end)
        assert os.read(read_end, 16) == b"1"
        assert os.waitpid(pid, 0)[1] == 0
        assert member.forks == 0  # the parent keeps its state
    finally:
        os.close(read_end)
        registry.unregister(member)


def test_members_are_listed_and_forgotten():
    member = StandIn()
    registry.register(member)
    assert member in registry.clients()
    registry.unregister(member)
    assert member not in registry.clients()
