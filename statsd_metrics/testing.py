"""Test your own instrumentation: a recorder that captures every metric, and a pytest fixture.

    from statsd_metrics.testing import Recorder

    def test_login_is_counted():
        with Recorder() as recorder:
            login("ana")
        recorder.assert_incr("auth.logins", 1, tags={"outcome": "ok"})

With pytest, the `statsd_recorder` fixture does the same (this module is registered as a
pytest plugin through the `pytest11` entry point of the distribution):

    def test_login_is_counted(statsd_recorder):
        login("ana")
        statsd_recorder.assert_incr("auth.logins", 1, tags={"outcome": "ok"})

While a recorder is active, every client of the process (the default one, and any created
during the recording) writes to it instead of its socket. What is captured is parsed back from
the exact line the client would have sent, so names carry the client's prefix, tags include the
constant tags, and hostile input appears as sanitised. Sampling is switched off so tests are
deterministic: a sampled call is always captured, with its `rate`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from . import registry
from .wire import COUNTER, GAUGE, SET, TIMER, Metric, parse_line

__all__ = ["Metric", "Recorder"]


class Recorder:
    """Captures metrics as `Metric(name, type, value, rate, tags, delta)` in `metrics`.

    `type` is the wire type: `c` counter, `g` gauge, `ms` timer, `s` set. Recorders nest; the
    innermost active one captures.
    """

    def __init__(self) -> None:
        self.metrics: list[Metric] = []
        self._lock = threading.Lock()

    def __enter__(self) -> Recorder:
        registry.push_capture(self._capture)
        return self

    def __exit__(self, *exc_info: object) -> None:
        registry.pop_capture(self._capture)

    def _capture(self, entry: str) -> None:
        metrics = [parse_line(line) for line in entry.split("\n")]
        if len(metrics) == 2:
            # Only a negative absolute gauge is written as two lines, `0` then the value: to
            # the test, it is the one gauge it asked for.
            metrics = [metrics[1]._replace(delta=False)]
        with self._lock:
            self.metrics.extend(metrics)

    # -- looking ------------------------------------------------------------------------

    def filter(
        self,
        name: str | None = None,
        type: str | None = None,
        tags: dict[str, str | None] | None = None,
    ) -> list[Metric]:
        """Captured metrics matching every criterion given; `tags` match as a subset."""
        with self._lock:
            metrics = list(self.metrics)
        return [
            metric
            for metric in metrics
            if (name is None or metric.name == name)
            and (type is None or metric.type == type)
            and (tags is None or tags.items() <= metric.tags.items())
        ]

    def names(self) -> list[str]:
        return sorted({metric.name for metric in self.filter()})

    def total(self, name: str, tags: dict[str, str | None] | None = None) -> float:
        """The sum of counter `name`'s increments, as the aggregator will count them (each
        scaled by 1/rate)."""
        return sum(float(metric.value) / metric.rate for metric in self.filter(name, COUNTER, tags))

    def clear(self) -> None:
        with self._lock:
            self.metrics.clear()

    # -- asserting ----------------------------------------------------------------------

    def assert_incr(
        self, name: str, value: float = 1, tags: dict[str, str | None] | None = None
    ) -> Metric:
        """Counter `name` was incremented by exactly `value` (with at least these `tags`)."""
        return self._assert_one(name, COUNTER, tags, lambda m: m.value == value, f"by {value}")

    def assert_gauge(
        self,
        name: str,
        value: float,
        tags: dict[str, str | None] | None = None,
        delta: bool = False,
    ) -> Metric:
        """Gauge `name` was set to `value` (or changed by it, with `delta`)."""
        return self._assert_one(
            name, GAUGE, tags, lambda m: m.value == value and m.delta == delta, f"to {value}"
        )

    def assert_timing(self, name: str, tags: dict[str, str | None] | None = None) -> Metric:
        """Timer `name` was recorded; returns the (last) record, for checks on its value."""
        return self._assert_one(name, TIMER, tags, lambda m: True, "")

    def assert_set(
        self, name: str, value: str | int, tags: dict[str, str | None] | None = None
    ) -> Metric:
        """`value` was added to set `name`."""
        return self._assert_one(name, SET, tags, lambda m: m.value == str(value), f"with {value!r}")

    def assert_not_emitted(self, name: str) -> None:
        found = self.filter(name)
        if found:
            raise AssertionError(f"{name!r} was emitted: {found}")

    def _assert_one(self, name, kind, tags, check, what) -> Metric:
        candidates = self.filter(name, kind, tags)
        matching = [metric for metric in candidates if check(metric)]
        if matching:
            return matching[-1]
        raise AssertionError(
            f"no {kind!r} metric {name!r} {what} with tags {tags or {}}; captured:\n"
            + "\n".join(f"  {metric}" for metric in self.filter())
        )


try:
    import pytest
except ImportError:  # the recorder works without pytest
    pass
else:

    @pytest.fixture
    def statsd_recorder() -> Iterator[Recorder]:
        """A `Recorder` active for the duration of the test."""
        with Recorder() as recorder:
            yield recorder
