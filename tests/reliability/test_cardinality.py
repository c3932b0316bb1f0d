"""A flood of distinct names stays within max_metric_names, every name beyond it counted.
(reliability/cardinality.py sends a million and measures the memory.)"""

from __future__ import annotations

import pytest

from .conftest import wait_until

pytestmark = pytest.mark.slow


def test_a_flood_of_distinct_names_is_capped_and_every_dropped_name_counted(start_daemon, sink):
    cap, flood = 2_000, 40_000
    d = start_daemon({"max_metric_names": cap}, flush=1.0)
    d.send(
        *(b"\n".join(b"card.n%d:1|c" % i for i in range(j, j + 20)) for j in range(0, flood, 20))
    )

    def received() -> float:
        return sum(
            float(v)
            for flush in sink.flushes()
            for path, v, _ in flush
            if path == "stats_counts.statsd.metrics_received"
        )

    wait_until(lambda: received() == flood, timeout=30, what=f"{flood} names received")
    sink.next_flush()  # kept names keep reporting (0) in every flush
    last = {path: value for path, value, _ in sink.flushes()[-1]}
    kept = sum(1 for path in last if path.startswith("stats_counts.card."))
    stats = d.mgmt("stats")
    rejected = int(stats.split("messages.rejected.too_many_names: ")[1].split("\n")[0])
    assert kept + rejected == flood  # every name is kept or counted
    # The cap counts the aggregator's own series too; its timestamp_lag gauge, created at the
    # second flush, is never refused.
    assert int(last["statsd.numStats"]) <= cap + 1
    assert kept == cap - 3  # the three internal counters exist from the start
    assert d.http()[0] == 200
