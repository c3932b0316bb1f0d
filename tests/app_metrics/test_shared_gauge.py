import os
import time

import pytest

from statsd_metrics import shared_gauge
from statsd_metrics.shared_gauge import SharedGauge


def test_changes_are_reported_as_deltas_only_when_the_level_moved(
    client, statsd_recorder, report_all
):
    gauge = SharedGauge(client, "pool.in_use")
    gauge.add(1)
    gauge.add(1)
    assert statsd_recorder.metrics == []  # a request pays no I/O
    report_all()
    gauge.add(-1)
    gauge.add(1)
    report_all()  # back where it was: nothing to say
    gauge.set(5)
    report_all()
    assert gauge.level == gauge.value == 5
    sent = [(m.value, m.delta) for m in statsd_recorder.filter("app.pool.in_use")]
    assert sent == [(2, True), (3, True)]


def test_the_reporter_thread_sends_within_an_interval(client, statsd_recorder):
    gauge = SharedGauge(client, "inflight")
    gauge.add(4)
    deadline = time.monotonic() + 3 * shared_gauge.REPORT_INTERVAL
    while not statsd_recorder.filter("app.inflight") and time.monotonic() < deadline:
        time.sleep(0.02)
    statsd_recorder.assert_gauge("app.inflight", 4, delta=True)


def test_withdraw_takes_the_reported_share_back(client, statsd_recorder, report_all):
    gauge = SharedGauge(client, "inflight")
    gauge.add(3)
    report_all()
    gauge.add(2)  # never reported: the aggregator never counted it
    gauge.withdraw()
    statsd_recorder.assert_gauge("app.inflight", -3, delta=True)
    assert gauge.value == gauge.level == 0
    gauge.withdraw()
    assert len(statsd_recorder.filter("app.inflight")) == 2


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_starts_with_no_share(client, report_all):
    gauge = SharedGauge(client, "inflight")
    gauge.add(2)
    gauge.report()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its share and leave without running atexit
        os.write(write, f"{gauge.level},{gauge.value}".encode())
        os._exit(0)
    os.close(write)
    assert os.read(read, 16) == b"0,0"
    os.close(read)
    os.waitpid(pid, 0)
    assert gauge.value == 2
    gauge.withdraw()
