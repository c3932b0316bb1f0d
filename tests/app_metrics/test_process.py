"""The process collector: one sample's gauges and counters, the thread, child processes."""

import gc
import subprocess
import sys
import time

import psutil
import pytest

from statsd_metrics.process import ProcessCollector, default_host


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_one_sample_sends_every_level(client, statsd_recorder):
    clock = Clock()
    collector = ProcessCollector(client, host="web-1.example", clock=clock)
    clock.now += 10
    collector.collect()
    base = "app.process.web-1_example"
    me = psutil.Process()
    rss = statsd_recorder.filter(f"{base}.memory.rss", "g")[0].value
    assert 0.5 * me.memory_info().rss < rss < 2 * me.memory_info().rss
    assert statsd_recorder.filter(f"{base}.threads", "g")[0].value >= 1
    assert statsd_recorder.filter(f"{base}.open_files", "g")[0].value >= 3
    statsd_recorder.assert_gauge(f"{base}.processes", 1)
    assert 0 <= statsd_recorder.filter(f"{base}.uptime", "g")[0].value < 3600
    assert 0 <= statsd_recorder.filter(f"{base}.cpu.percent", "g")[0].value <= 200


def test_cpu_percent_is_cpu_time_over_elapsed_time(client, statsd_recorder):
    clock = Clock()
    collector = ProcessCollector(client, host="h", clock=clock)
    start = time.process_time()
    while time.process_time() - start < 0.2:  # burn ~0.2 s of CPU
        pass
    clock.now += 0.4  # as if 0.4 s had passed: about 50 %
    collector.collect()
    percent = statsd_recorder.filter("app.process.h.cpu.percent")[0].value
    assert 35 <= percent <= 90


def test_gc_collections_are_counted_as_deltas(client, statsd_recorder):
    collector = ProcessCollector(client, host="h")
    gc.collect()
    gc.collect()
    collector.collect()
    assert statsd_recorder.total("app.process.h.gc.gen2.collections") >= 2
    statsd_recorder.clear()
    collector.collect()  # nothing new for gen2 unless the interpreter ran one meanwhile
    assert statsd_recorder.total("app.process.h.gc.gen2.collections") <= 1


def test_children_are_summed_when_asked(client, statsd_recorder):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        ProcessCollector(client, host="h", children=True).collect()
        statsd_recorder.assert_gauge("app.process.h.processes", 2)
        ProcessCollector(client, host="h2").collect()
        statsd_recorder.assert_gauge("app.process.h2.processes", 1)
    finally:
        child.kill()
        child.wait()


def test_background_thread_samples_until_stopped(client, statsd_recorder):
    collector = ProcessCollector(client, host="h", interval=0.02).start()
    deadline = time.monotonic() + 5
    while not statsd_recorder.filter("app.process.h.memory.rss") and time.monotonic() < deadline:
        time.sleep(0.01)
    collector.stop()
    assert statsd_recorder.filter("app.process.h.memory.rss")
    count = len(statsd_recorder.filter("app.process.h.memory.rss"))
    time.sleep(0.1)
    assert len(statsd_recorder.filter("app.process.h.memory.rss")) == count


def test_a_failing_sample_does_not_kill_the_thread(client, statsd_recorder, monkeypatch):
    collector = ProcessCollector(client, host="h", interval=0.02)
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) == 1:
            raise psutil.AccessDenied()
        statsd_recorder.clear()

    monkeypatch.setattr(collector, "collect", flaky)
    collector.start()
    deadline = time.monotonic() + 5
    while len(calls) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    collector.stop()
    assert len(calls) >= 2


@pytest.mark.parametrize("name", ["web1.prod.example.org", "WEB_2"])
def test_host_is_one_segment(name, monkeypatch):
    monkeypatch.setattr("socket.gethostname", lambda: name)
    assert "." not in default_host()
