"""`Timer` and `Counted`: each one a decorator and a context manager alike.

As a decorator, all per-call state lives in the wrapper's local variables, so one decorated
function is safe under any number of threads and under recursion. Plain functions, methods,
class/static methods, coroutine functions (the awaited work is timed, not the creation of the
coroutine), generators and async generators (from the first step to exhaustion or close) are
all wrapped in kind, with `functools.wraps`, so signature and docstring are kept.

As a context manager an instrument keeps a stack of start tokens, so re-entering the same object
nests correctly; for blocks running concurrently in several threads, use one object per block
(`with client.timed("x"):` creates one each time).

An instrument is bound to a client, or to a function that returns one (`get_client`), which is
then called on every use: that is what lets the module-level `statsd_metrics.timed` decorate
functions at import time, before `configure()`.

Nothing here raises into the application: the metric methods never raise, and the wrapped
function's own exceptions pass through untouched. (That is where `statsd`'s Timer could not
serve: its `stop()` raises when misused, and it times a generator's creation, not its run.
Its object API, `start()`, `stop(send=False)`, `send()` and `ms`, is kept, with misuse
counted as `bad_timer` instead of raised.)

Default names do not depend on how the process was started: a function of the script that
was run (`python app.py`, module `__main__`) is named after the module it would be imported
as (`app`, or `pkg.app` inside a package), as under gunicorn or `python -m`.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import sys
from collections.abc import Callable
from time import perf_counter
from typing import TYPE_CHECKING, Any, TypeAlias, cast

from .wire import Rejected

if TYPE_CHECKING:
    from .client import Client
    from .wire import TagsArg

logger = logging.getLogger("statsd_metrics")

Target: TypeAlias = "Client | Callable[[], Client]"
Enter = Callable[[], Any]
Leave = Callable[[Any, BaseException | None], None]


@functools.cache
def main_module_name() -> str:
    """The importable name of the `__main__` module: `python -m pkg.app` knows it
    (`__spec__`); for `python path/app.py` it is the file's name, preceded by the packages
    (directories with an `__init__.py`) that contain it. `__main__` when there is no file
    (an interactive session)."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name and spec.name != "__main__":
        return str(spec.name)
    path = getattr(main, "__file__", None)
    if not path:
        return "__main__"
    path = os.path.realpath(path)
    parts = [os.path.splitext(os.path.basename(path))[0]]
    folder = os.path.dirname(path)
    while os.path.isfile(os.path.join(folder, "__init__.py")):
        parts.insert(0, os.path.basename(folder))
        folder = os.path.dirname(folder)
    return ".".join(parts)


def default_name(func: Callable) -> str:
    """`<module>.<qualified name>`, without the `<locals>` of nested functions."""
    module = getattr(func, "__module__", None) or "unknown"
    if module == "__main__":
        module = main_module_name()
    qualname = getattr(func, "__qualname__", None) or getattr(func, "__name__", "function")
    return f"{module}.{qualname}".replace("<locals>.", "")


def _decorate(func: Callable, enter: Enter, leave: Leave) -> Callable:
    if inspect.isasyncgenfunction(func):

        async def async_gen_wrapper(*args: Any, **kwargs: Any) -> Any:
            token = enter()
            agen = func(*args, **kwargs)
            try:
                value = await agen.__anext__()
                while True:
                    try:
                        sent = yield value
                    except GeneratorExit:
                        await agen.aclose()
                        raise
                    except BaseException as exc:
                        value = await agen.athrow(exc)
                    else:
                        value = await agen.asend(sent)
            except StopAsyncIteration:
                leave(token, None)
            except BaseException as exc:
                leave(token, exc)
                raise

        wrapper: Callable = async_gen_wrapper
    elif inspect.iscoroutinefunction(func):

        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            token = enter()
            try:
                result = await func(*args, **kwargs)
            except BaseException as exc:
                leave(token, exc)
                raise
            leave(token, None)
            return result

        wrapper = async_wrapper
    elif inspect.isgeneratorfunction(func):

        def gen_wrapper(*args: Any, **kwargs: Any) -> Any:
            token = enter()
            try:
                result = yield from func(*args, **kwargs)
            except BaseException as exc:
                leave(token, exc)
                raise
            leave(token, None)
            return result

        wrapper = gen_wrapper
    else:

        def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
            token = enter()
            try:
                result = func(*args, **kwargs)
            except BaseException as exc:
                leave(token, exc)
                raise
            leave(token, None)
            return result

        wrapper = sync_wrapper
    return functools.wraps(func)(wrapper)


def build(
    kind: type[_Instrument], target: Target, stat: str | Callable[..., Any] | None, *options: Any
) -> Any:
    """An instrument named `stat`; or, when `stat` is the function itself (a bare `@timed`),
    that function wrapped by an instrument with the default name."""
    if callable(stat):
        return kind(target, None, *options)(stat)
    return kind(target, stat, *options)  # a bad name is counted


class _Instrument:
    """A decorator and a context manager alike; subclasses say what happens around the call."""

    def __init__(
        self, target: Target, name: str | None = None, rate: float = 1, tags: TagsArg = None
    ) -> None:
        self._target = target
        self.name = name
        self.rate = rate
        self.tags = tags
        self._tokens: list[Any] = []
        self._block_hooks: tuple[Enter, Leave] | None = None

    def _hooks(self, name: str | None) -> tuple[Enter, Leave]:
        raise NotImplementedError

    def _method(self, method: str) -> Callable[..., None]:
        """The client's `method`: bound now for a client, looked up per call for a getter."""
        target = self._target
        if not callable(target):
            return getattr(target, method)

        def call(*args: Any) -> None:
            getattr(target(), method)(*args)

        return call

    def __call__(self, func: Callable) -> Any:
        if isinstance(func, classmethod | staticmethod):
            return type(func)(self(func.__func__))
        enter, leave = self._hooks(self.name or default_name(func))
        return _decorate(func, enter, leave)

    def __enter__(self) -> Any:
        if self._block_hooks is None:
            self._block_hooks = self._hooks(self.name)
        self._tokens.append(self._block_hooks[0]())
        return self

    def __exit__(self, typ: object, exc: BaseException | None, tb: object) -> None:
        if self._tokens and self._block_hooks is not None:
            self._block_hooks[1](self._tokens.pop(), exc)


class Timer(_Instrument):
    """Sends the duration of each call or block to timer `name`, in milliseconds.

    `ms` holds the last duration measured. As in the `statsd` package, `start()` and
    `stop(send=True)` time a span that is not a block, and `stop(send=False)` then `send()`
    sends it later; `send()` sends a measurement once. Misuse (stop before start, send before
    stop, sending twice) sends nothing and is counted as `bad_timer`.
    """

    ms: float | None = None
    _started: float | None = None
    _sent = False

    def _hooks(self, name: str | None) -> tuple[Enter, Leave]:
        target, rate, tags = self._target, self.rate, self.tags
        name = cast(str, name)  # a block timer without a name: the client counts it as bad
        clock = perf_counter  # read when decorating, so that a test can substitute a clock
        if callable(target):  # the default client, looked up per call: one call frame, not two

            def leave(start: float, exc: BaseException | None) -> None:
                self.ms = ms = (clock() - start) * 1000.0
                target().timing(name, ms, rate, tags)

        else:
            timing = target.timing

            def leave(start: float, exc: BaseException | None) -> None:
                self.ms = ms = (clock() - start) * 1000.0
                timing(name, ms, rate, tags)

        return clock, leave

    def start(self) -> Timer:
        self.ms = None
        self._sent = False
        self._started = perf_counter()
        return self

    def stop(self, send: bool = True) -> Timer:
        if self._started is None:
            self._misuse("stop() before start()")
            return self
        self.ms = (perf_counter() - self._started) * 1000.0
        if send:
            self.send()
        return self

    def send(self) -> None:
        if self.ms is None:
            self._misuse("send() before a measurement")
        elif self._sent:
            self._misuse("send() of a measurement already sent")
        else:
            self._sent = True
            self._method("timing")(self.name, self.ms, self.rate, self.tags)

    def _misuse(self, what: str) -> None:
        try:
            target = self._target
            client = target() if callable(target) else target
            client._reject(Rejected("bad_timer", f"Timer {what}"))
        except Exception:  # never into the application
            pass


class Counted(_Instrument):
    """Counts each call or block in counter `name`; with `failures`, also those that raise (all
    `Exception`s for True, or the given types) in `<name>.failures`."""

    def __init__(
        self,
        target: Target,
        name: str | None = None,
        rate: float = 1,
        tags: TagsArg = None,
        failures: bool | type[BaseException] | tuple[type[BaseException], ...] = False,
    ) -> None:
        super().__init__(target, name, rate, tags)
        self._failures = _exception_types(failures)

    def _hooks(self, name: str | None) -> tuple[Enter, Leave]:
        incr, rate, tags, failures = self._method("incr"), self.rate, self.tags, self._failures
        failures_name = None if name is None else f"{name}.failures"

        def enter() -> None:
            incr(name, 1, rate, tags)

        def leave(_: None, exc: BaseException | None) -> None:
            if exc is not None and failures and isinstance(exc, failures):
                incr(failures_name, 1, rate, tags)

        return enter, leave


def _exception_types(failures: object) -> tuple[type[BaseException], ...]:
    """`failures` as a tuple for `isinstance`; anything that is not exception types counts
    nothing (and is logged), rather than raising from inside the application's call."""
    if failures is True:
        return (Exception,)
    if not failures:
        return ()
    types = failures if isinstance(failures, tuple) else (failures,)
    if all(isinstance(kind, type) and issubclass(kind, BaseException) for kind in types):
        return types
    logger.warning("statsd_metrics: counted(failures=%r) is not exception types; ignored", failures)
    return ()
