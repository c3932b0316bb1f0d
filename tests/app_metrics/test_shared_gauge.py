import os

import pytest

from statsd_metrics import shared_gauge
from statsd_metrics.shared_gauge import SharedGauge


def test_changes_travel_as_deltas_and_the_share_is_remembered(client, statsd_recorder):
    gauge = SharedGauge(client, "pool.in_use")
    gauge.add(1)
    gauge.add(1)
    gauge.add(-1)
    gauge.add(0)  # nothing to send
    gauge.set(5)
    assert gauge.value == 5
    sent = [(m.value, m.delta) for m in statsd_recorder.filter("app.pool.in_use")]
    assert sent == [(1, True), (1, True), (-1, True), (4, True)]


def test_withdraw_takes_the_share_back(client, statsd_recorder):
    gauge = SharedGauge(client, "inflight")
    gauge.add(3)
    shared_gauge._withdraw_all()  # what runs at exit
    statsd_recorder.assert_gauge("app.inflight", -3, delta=True)
    assert gauge.value == 0
    gauge.withdraw()
    assert len(statsd_recorder.filter("app.inflight")) == 2


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_starts_with_no_share(client):
    gauge = SharedGauge(client, "inflight")
    gauge.add(2)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its share and leave without running atexit
        os.write(write, str(gauge.value).encode())
        os._exit(0)
    os.close(write)
    assert os.read(read, 16) == b"0"
    os.close(read)
    os.waitpid(pid, 0)
    assert gauge.value == 2
    gauge.withdraw()
