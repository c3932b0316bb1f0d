"""`timed` and `counted` as decorators and context managers, on every kind of callable.

Durations come from an injected clock (`perf_counter` substituted in statsd_metrics.instruments
before decorating), so every value on the wire is exact."""

from __future__ import annotations

import asyncio
import inspect
import threading

import pytest

import statsd_metrics.instruments


@pytest.fixture
def tick(clock, monkeypatch):
    """The clock the instruments read; `tick(seconds)` moves it on."""
    monkeypatch.setattr(statsd_metrics.instruments, "perf_counter", clock)
    return clock.advance


@pytest.fixture
def client(udp):
    return udp(buffered=False)


def test_timed_plain_function(client, sink, tick):
    @client.timed("work")
    def work(x, y=2):
        tick(0.25)
        return x + y

    assert work(1) == 3
    assert sink.recv() == b"work:250.000|ms"


def test_bare_decorators_name_the_function(client, sink, tick):
    @client.timed
    def handler():
        tick(0.001)

    @client.counted
    def counted_handler():
        pass

    handler()
    counted_handler()
    prefix = f"{__name__}.test_bare_decorators_name_the_function"
    assert sink.recv() == f"{prefix}.handler:1.000|ms".encode()
    assert sink.recv() == f"{prefix}.counted_handler:1|c".encode()


def test_methods_classmethods_and_staticmethods(client, sink, tick):
    class Service:
        factor = 3

        @client.timed()
        def handle(self, x):
            tick(0.002)
            return x * self.factor

        @client.counted()
        @classmethod
        def build(cls):
            return cls()

        @client.counted("static.calls")
        @staticmethod
        def helper(x):
            return -x

    assert Service.build().handle(2) == 6
    assert Service.helper(4) == -4
    assert Service().helper(1) == -1
    owner = f"{__name__}.test_methods_classmethods_and_staticmethods.Service"
    assert sink.recv_many(4) == [
        f"{owner}.build:1|c".encode(),
        f"{owner}.handle:2.000|ms".encode(),
        b"static.calls:1|c",
        b"static.calls:1|c",
    ]


def test_async_functions_time_the_awaited_work_not_the_creation(client, sink, tick):
    @client.timed("job")
    async def job():
        tick(0.25)
        await asyncio.sleep(0)
        tick(0.25)
        return 7

    assert inspect.iscoroutinefunction(job)
    coroutine = job()
    tick(10)  # between creation and awaiting: not the job's time
    assert sink.pending() == []
    assert asyncio.run(coroutine) == 7
    assert sink.recv() == b"job:500.000|ms"


def test_generators_are_timed_from_first_step_to_exhaustion(client, sink, tick):
    @client.timed("stream")
    def stream():
        tick(0.1)
        received = yield 1
        tick(0.1)
        yield received * 2

    generator = stream()
    tick(5)  # created, not started
    assert next(generator) == 1
    assert generator.send(21) == 42
    assert sink.pending() == []
    with pytest.raises(StopIteration):
        next(generator)
    assert sink.recv() == b"stream:200.000|ms"


def test_generator_closed_early_is_timed_and_not_a_failure(client, sink, tick):
    @client.counted("gen", failures=True)
    @client.timed("gen.time")
    def numbers():
        yield from range(10)

    iterator = numbers()
    tick(1)
    assert next(iterator) == 0
    tick(0.5)
    iterator.close()
    assert sink.recv_many(2) == [b"gen:1|c", b"gen.time:500.000|ms"]
    assert sink.pending() == []


def test_async_generators_forward_send_throw_and_close(client, sink, tick):
    @client.timed("agen")
    async def agen():
        tick(0.1)
        try:
            received = yield 1
        except KeyError:
            received = 100
        tick(0.1)
        yield received + 1
        yield -1

    async def drive():
        iterator = agen()
        first = await iterator.__anext__()
        second = await iterator.athrow(KeyError("x"))
        await iterator.aclose()
        return first, second

    assert asyncio.run(drive()) == (1, 101)
    assert sink.recv() == b"agen:200.000|ms"


def test_wrappers_keep_signature_docstring_and_kind(client):
    def plain(a: int, *, b: str = "x") -> str:
        """Plain doc."""
        return b * a

    async def coro(a: int) -> int:
        """Coroutine doc."""
        return a

    def gen(n: int):
        yield n

    for func in (plain, coro, gen):
        for decorate in (client.timed, client.counted(failures=True)):
            wrapped = decorate(func)
            assert inspect.signature(wrapped) == inspect.signature(func)
            assert wrapped.__doc__ == func.__doc__
            assert wrapped.__name__ == func.__name__
            assert wrapped.__wrapped__ is func
            assert inspect.iscoroutinefunction(wrapped) == inspect.iscoroutinefunction(func)
            assert inspect.isgeneratorfunction(wrapped) == inspect.isgeneratorfunction(func)


def test_exceptions_pass_through_untouched_and_the_time_is_still_sent(client, sink, tick):
    error = ValueError("bad input")

    @client.timed("fails")
    def fails():
        tick(0.003)
        raise error

    with pytest.raises(ValueError, match="bad input") as info:
        fails()
    assert info.value is error
    assert sink.recv() == b"fails:3.000|ms"


def test_counted_failures(client, sink):
    @client.counted("login", failures=True, tags={"via": "form"})
    def login(ok):
        if not ok:
            raise PermissionError("denied")

    @client.counted("parse", failures=ValueError)
    def parse(exc):
        raise exc

    login(True)
    with pytest.raises(PermissionError):
        login(False)
    with pytest.raises(ValueError, match="unparsable"):
        parse(ValueError("unparsable"))
    with pytest.raises(KeyError):
        parse(KeyError())
    assert sink.recv_many(6) == [
        b"login:1|c|#via:form",
        b"login:1|c|#via:form",
        b"login.failures:1|c|#via:form",
        b"parse:1|c",
        b"parse.failures:1|c",
        b"parse:1|c",  # a KeyError is not a failure this counter watches
    ]
    assert sink.pending() == []


def test_counted_true_ignores_keyboard_interrupt(client, sink):
    @client.counted("task", failures=True)
    def task():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        task()
    assert sink.recv() == b"task:1|c"
    assert sink.pending() == []


def test_bad_failures_argument_is_ignored_not_raised(client, sink, caplog):
    @client.counted("odd", failures="ValueError")
    def odd():
        raise ValueError("odd")

    with pytest.raises(ValueError, match="odd"):
        odd()
    assert sink.recv() == b"odd:1|c"
    assert sink.pending() == []
    assert "not exception types" in caplog.text


def test_context_managers(client, sink, tick):
    with client.timed("block", tags={"k": "v"}) as timer:
        tick(0.042)
    assert timer.ms == pytest.approx(42.0)
    with pytest.raises(RuntimeError), client.counted("risky", failures=True):
        raise RuntimeError
    assert sink.recv_many(3) == [b"block:42.000|ms|#k:v", b"risky:1|c", b"risky.failures:1|c"]


def test_one_context_manager_object_re_entered_nests(client, sink, tick):
    timer = client.timer("nested")
    with timer:
        tick(1)
        with timer:
            tick(2)
    assert sink.recv_many(2) == [b"nested:2000.000|ms", b"nested:3000.000|ms"]


def test_start_and_stop(client, sink, tick):
    timer = client.timer("span").start()
    tick(0.5)
    assert timer.stop() is timer
    assert timer.ms == 500.0
    timer.stop()  # its measurement was sent already: nothing raised, nothing sent again
    assert sink.recv() == b"span:500.000|ms"
    assert sink.pending() == []


def test_a_context_manager_without_a_name_drops_visibly(client, sink):
    with client.timed():
        pass
    with client.counted(failures=True):
        pass
    assert sink.pending() == []
    assert client.stats()["dropped"] == {"bad_name": 2}


def test_recursion_times_each_level(client, sink, tick):
    @client.timed("depth")
    def descend(n):
        tick(1)
        if n > 1:
            descend(n - 1)

    descend(3)
    assert sink.recv_many(3) == [b"depth:1000.000|ms", b"depth:2000.000|ms", b"depth:3000.000|ms"]


def test_many_threads_through_one_decorated_function(udp, sink):
    client = udp()

    @client.timed("shared")
    @client.counted("shared.calls")
    def shared(n):
        return n * 2

    results: list[int] = []

    def run(offset):
        results.extend(shared(offset + i) for i in range(250))

    threads = [threading.Thread(target=run, args=(k * 1000,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    client.flush()
    lines = b"\n".join(sink.pending()).split(b"\n")
    assert sorted(results) == sorted(2 * (k * 1000 + i) for k in range(8) for i in range(250))
    assert lines.count(b"shared.calls:1|c") == 2000
    assert sum(line.startswith(b"shared:") and line.endswith(b"|ms") for line in lines) == 2000
    assert len(lines) == 4000
