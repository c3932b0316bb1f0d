"""`Client`: the application's handle on StatsD. Fire and forget, and it never raises.

Every public method catches everything: a bad argument, a closed client, a dead aggregator, a
full socket. What could not be sent is counted under a reason (`stats()`), and the first drop
of each reason is logged once.

The application's path is kept short: a line is built from cached pieces (the sanitised,
prefixed name; the formatted tag suffix) and handed to `_write`, which is the buffer's
`deque.append` by default, the transport when unbuffered, and the test recorder while one is
active. In the default buffered mode everything slow (I/O, DNS, packing) happens on the
flusher thread, and the application's path takes no lock.

The constructor, method names and positional parameters follow the `statsd` package's
`StatsClient` (`Client(host, port, prefix, maxudpsize)`, `incr(stat, count=1, rate=1)`,
`timing(stat, delta, rate=1)`, `pipeline()`, ...), so code written for it keeps working; tags
are an added keyword, and DogStatsD's method names are aliases (docs/migration.md). Its
implementation is not reused: see transport.py, and `_emit` below (its per-call `'%s:%s'`
formatting is the cost we are asked to beat 4x).
"""

from __future__ import annotations

import logging
import random as _random
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import registry
from .apart import ApartSets
from .buffer import Buffer, pack
from .instruments import Counted, Timer, build
from .stats import Stats
from .transport import (
    RETRY_INTERVAL,
    NetworkTransport,
    TCPTransport,
    Transport,
    UDPTransport,
    UnixTransport,
)
from .wire import (
    COUNTER,
    GAUGE,
    SET,
    TIMER,
    Rejected,
    TagsArg,
    format_histogram,
    format_ms,
    format_number,
    format_rate,
    format_set_member,
    format_tags,
    parse_tags,
    sanitize_name,
)
from .worker import Worker

if TYPE_CHECKING:
    from .pipeline import Pipeline

logger = logging.getLogger("statsd_metrics")

# Bound on each cache of formatted pieces: names built from unbounded data (a user id in a
# metric name) must not grow memory; past the bound, pieces are formatted on every call.
CACHE_LIMIT = 10_000
# How many times per flush interval the flusher looks for full payloads while lines arrive.
ROUNDS = 5
_INF = float("inf")
# Tags where `statsd` has the sample rate: DogStatsD's and markus's argument order.
_TAG_SHAPES = (list, tuple, dict)

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


class ConfigError(ValueError):
    """A client option that cannot be used: `option` is its argument name, `why` the reason."""

    def __init__(self, option: str, why: str) -> None:
        super().__init__(f"{option}: {why}")
        self.option, self.why = option, why


def _flag(value: object, name: str) -> bool:
    if isinstance(value, str):
        if value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ConfigError(name, f"{value!r} is not a boolean")
    return bool(value)


def _positive(value: object, kind: type, name: str) -> Any:
    what = "an integer" if kind is int else "a number"
    try:
        if isinstance(value, bool) or (
            kind is int and isinstance(value, float) and not value.is_integer()
        ):
            raise TypeError
        number = kind(value)
    except (TypeError, ValueError):
        raise ConfigError(name, f"{value!r} is not {what}") from None
    if not number > 0:
        raise ConfigError(name, f"must be > 0, not {value!r}")
    return number


def _constant_tags(tags: TagsArg | str) -> dict[str, str | None]:
    if isinstance(tags, str):  # the environment's form: "env:prod,region:eu"
        tags = [tag.strip() for tag in tags.split(",") if tag.strip()]
    try:
        return parse_tags(tags)
    except (Rejected, TypeError, ValueError) as exc:
        raise ConfigError("tags", str(exc)) from None


def _prefix(prefix: str | None) -> str:
    try:
        return sanitize_name(prefix) + "." if prefix else ""
    except (Rejected, TypeError, ValueError) as exc:
        raise ConfigError("prefix", str(exc)) from None


def _open_transport(
    transport: str, host: str, port: int | str, socket_path: str | None, stats: Stats,
    *, clock: Callable[[], float], resolver: Callable[..., list], resolve_interval: float,
    timeout: float, ipv6: bool | str,
) -> Transport:  # fmt: skip
    kind = (transport or "udp").strip().lower() if socket_path is None else "unix"
    if kind == "unix":
        if not socket_path:
            raise ConfigError("socket_path", "the unix transport needs one")
        return UnixTransport(str(socket_path), stats, clock, timeout)
    if kind not in ("udp", "tcp"):
        raise ConfigError("transport", f"must be udp, tcp or unix, not {transport!r}")
    if not isinstance(host, str) or not host:
        raise ConfigError("host", f"must be a non-empty str, not {host!r}")
    number: int = _positive(port, int, "port")
    if not 0 < number < 65536:
        raise ConfigError("port", f"{number} is not between 1 and 65535")
    family = socket.AF_INET6 if _flag(ipv6, "ipv6") else 0
    if kind == "udp":
        return UDPTransport(
            host, number, stats, clock=clock, resolver=resolver,
            resolve_interval=resolve_interval, family=family,
        )  # fmt: skip
    return TCPTransport(
        host, number, stats, clock=clock, resolver=resolver, resolve_interval=resolve_interval,
        timeout=timeout, family=family,
    )  # fmt: skip


def _literal(text: str) -> str:
    """`text` inside a %-format (sanitised names hold no `%`; this keeps it so if they did)."""
    return text.replace("%", "%%")


class _Cache(dict):
    """A dict that fills itself with `make(key)` on a miss, up to `CACHE_LIMIT` entries."""

    def __init__(self, make: Callable[[Any], str]) -> None:
        super().__init__()
        self._make = make

    def __missing__(self, key: Any) -> str:
        value = self._make(key)
        if len(self) < CACHE_LIMIT:
            self[key] = value
        return value


class Client:
    """A StatsD client. Buffered UDP to 127.0.0.1:8125 unless told otherwise.

    Options (strings are accepted for every option, as read from the environment):

    - `host`, `port`: the aggregator. A host name is resolved in the background, at once and
      then every `resolve_interval` seconds (never in the constructor: a DNS that does not
      answer must not hold the application up); `localhost` tries IPv4 and IPv6.
    - `prefix`: prepended to every name, with a dot.
    - `maxudpsize`, `ipv6`: the `statsd` package's fourth and fifth arguments. `maxudpsize`
      is another name for `max_packet_size`; `ipv6=True` uses IPv6 addresses only (without
      it, both families are tried).
    - `tags`: client-wide constant tags (`{"env": "prod"}`, or `"env:prod,region:eu"`).
    - `transport`: `"udp"` (default), `"tcp"` or `"unix"` (datagram socket at `socket_path`).
    - `buffered`: pack lines into payloads of at most `max_packet_size` bytes (1432: one
      Ethernet frame with room for IPv6 and UDP headers), sent when full or every
      `flush_interval` seconds by a background thread. At most `max_queue` lines wait.
      Unbuffered, each metric is sent at once on the calling thread.
    - `timeout`: bound on a TCP or Unix stream connect or write. None (the `statsd`
      package's default, which blocks without bound) means the default bound, 1 s.
    - `resolver`, `clock`, `random`: injected for tests (`socket.getaddrinfo`,
      `time.monotonic`, `random.random`).

    Invalid options never raise: the error is logged and the client drops every metric under
    `bad_config`, visibly in `stats()`.
    """

    _write: Callable[[str], None]  # where lines go now: see `_redirect`

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int | str = 8125,
        prefix: str | None = None,
        maxudpsize: int | str | None = None,
        ipv6: bool | str = False,
        *,
        tags: TagsArg | str = None,
        transport: str = "udp",
        socket_path: str | None = None,
        buffered: bool | str = True,
        max_packet_size: int | str = 1432,
        flush_interval: float | str = 0.25,
        max_queue: int | str = 100_000,
        timeout: float | str | None = 1.0,
        resolve_interval: float | str = 60.0,
        resolver: Callable[..., list] = socket.getaddrinfo,
        clock: Callable[[], float] = time.monotonic,
        random: Callable[[], float] = _random.random,
    ) -> None:
        self._stats = Stats()
        self._clock = clock
        self._random_source = random
        self._random = random
        # Formatted pieces, cached per stat (or tag set): `<prefix><stat>:`, `<prefix><stat>:1|c`.
        self._heads = _Cache(lambda stat: self._prefix + sanitize_name(stat) + ":")
        self._ones = _Cache(lambda stat: self._heads[stat] + "1" + self._plain[COUNTER])
        # `<prefix><stat>:%.3f|ms`: one %-format per timing, the line's costliest part
        self._timings = _Cache(
            lambda stat: _literal(self._heads[stat]) + "%.3f" + _literal(self._plain[TIMER])
        )
        self._tag_parts = _Cache(self._format_tags)
        # Usable defaults, so that a client with a bad configuration still counts its drops.
        self._prefix = ""
        self._constant: dict[str, str | None] = {}
        self._constant_part = ""
        self._plain = {kind: f"|{kind}" for kind in (COUNTER, GAUGE, TIMER, SET)}
        self._max_size = 1432
        self._closed = False
        self._capture: registry.Capture | None = None
        self._write: Callable[[str], None]  # where a line goes now: set by redirect()
        self._config_error: str | None = None
        self._config_problem: Exception | None = None
        self._transport: Transport | None = None
        self._buffer: Buffer | None = None
        self._apart = ApartSets(1432, 100_000)  # set_apart's members, sent in their own payloads
        self._worker: Worker | None = None
        self._timeout = 1.0
        self._interval = 0.25
        self._rounds = 0
        try:
            self._prefix = _prefix(prefix)
            self._constant = _constant_tags(tags)
            size = max_packet_size if maxudpsize is None else maxudpsize
            self._max_size = _positive(size, int, "max_packet_size")
            self._timeout = 1.0 if timeout is None else _positive(timeout, float, "timeout")
            self._interval = _positive(flush_interval, float, "flush_interval")
            resolve = _positive(resolve_interval, float, "resolve_interval")
            self._transport = _open_transport(
                transport, host, port, socket_path, self._stats, clock=clock, resolver=resolver,
                resolve_interval=resolve, timeout=self._timeout, ipv6=ipv6,
            )  # fmt: skip
            self._apart = ApartSets(self._max_size, _positive(max_queue, int, "max_queue"))
            # The constant suffix of untagged lines, per metric type: `|c|#env:prod`.
            self._constant_part = format_tags(None, self._constant)
            self._plain = {code: f"|{code}{self._constant_part}" for code in self._plain}
            resolves = isinstance(self._transport, NetworkTransport) and self._transport.resolves
            if _flag(buffered, "buffered"):
                self._buffer = Buffer(self._max_size, _positive(max_queue, int, "max_queue"))
                self._worker = Worker(self._tick, "statsd-metrics-flusher")
            elif resolves:
                self._worker = Worker(self._tick, "statsd-metrics-resolver")
            if self._worker is not None:
                self._worker.start()
        except Exception as exc:
            self._config_problem = exc
            self._config_error = f"{type(exc).__name__}: {exc}"
            logger.error("statsd_metrics: invalid configuration, all metrics dropped: %s", exc)
        registry.register(self)

    # -- the metric methods --------------------------------------------------------------

    def incr(self, stat: str, count: float = 1, rate: float = 1, tags: TagsArg = None) -> None:
        """Add `count` to counter `stat`."""
        try:
            if count == 1 and rate == 1 and tags is None:  # the commonest call: a cached line
                self._write(self._ones[stat])
            else:
                self._emit(stat, format_number(count), COUNTER, rate, tags)
        except Exception as exc:
            self._reject(exc)

    def decr(self, stat: str, count: float = 1, rate: float = 1, tags: TagsArg = None) -> None:
        """Subtract `count` from counter `stat`."""
        try:
            format_number(count)  # rejects a non-number before negating it
            self._emit(stat, format_number(-count), COUNTER, rate, tags)
        except Exception as exc:
            self._reject(exc)

    def gauge(
        self, stat: str, value: float, rate: float = 1, delta: bool = False, tags: TagsArg = None
    ) -> None:
        """Set gauge `stat` to `value`, or change it by `value` when `delta` is true.

        A negative absolute value travels as `0` then the value, in one payload: on the wire,
        a signed value is a change, so this is how StatsD sets a gauge below zero.
        """
        try:
            text = format_number(value)
            if delta:
                self._emit(stat, text if text[0] == "-" else "+" + text, GAUGE, rate, tags)
            elif text[0] == "-":
                self._emit(stat, text, GAUGE, rate, tags, reset=True)
            else:
                self._emit(stat, text, GAUGE, rate, tags)
        except Exception as exc:
            self._reject(exc)

    def timing(self, stat: str, delta: float, rate: float = 1, tags: TagsArg = None) -> None:
        """Record a duration: `delta` in milliseconds (a number) or a `datetime.timedelta`."""
        try:
            if type(delta) is float and 0.0 <= delta < _INF and rate == 1 and tags is None:
                # every @timed call without options: format_ms's fast path, inlined
                self._write(self._timings[stat] % delta)
            else:
                self._emit(stat, format_ms(delta), TIMER, rate, tags)
        except Exception as exc:
            self._reject(exc)

    def set(self, stat: str, value: str | int, rate: float = 1, tags: TagsArg = None) -> None:
        """Add `value` to set `stat`; the aggregator counts distinct values per flush."""
        try:
            self._emit(stat, format_set_member(value), SET, rate, tags)
        except Exception as exc:
            self._reject(exc)

    def set_apart(self, stat: str, value: str | float, tags: TagsArg = None) -> None:
        """Add `value` to set `stat`, never in a payload or at a moment of any other metric.

        For members that must not be tied to what else a request sends (user pseudonyms): they
        are kept in the process and leave deduplicated, in random order and in payloads of
        their own, once per `apart.INTERVAL` (10 s) of wall-clock time, and at `close()`.
        Test recorders capture them at once, like any other metric."""
        try:
            line = self._heads[stat] + format_set_member(value)
            line += self._plain[SET] if tags is None else "|" + SET + self._tags(tags)
            if self._capture is not None or self._closed or self._config_error is not None:
                self._write(line)  # the recorder, or a counted drop
                return
            if self._buffer is None:  # no flusher thread looks at the clock: look now
                self._send_apart()
            self._apart.add(line)
        except Exception as exc:
            self._reject(exc)

    def timed(
        self, stat: str | Callable | None = None, rate: float = 1, tags: TagsArg = None
    ) -> Any:
        """Time a block or each call of a function, in milliseconds.

        `@client.timed`, `@client.timed("name")` or `with client.timed("name"):`. Without a
        name, a decorated function is timed as `<module>.<qualified name>`.
        """
        return build(Timer, self, stat, rate, tags)

    timer = timed  # `statsd.StatsClient.timer(stat, rate)`, usable the same ways
    timer_decorator = timed  # markus's name for the decorator

    def counted(
        self,
        stat: str | Callable | None = None,
        rate: float = 1,
        tags: TagsArg = None,
        *,
        failures: bool | type[BaseException] | tuple[type[BaseException], ...] = False,
    ) -> Any:
        """Count the calls of a function (or entries of a block) in counter `stat`.

        With `failures`, calls that raise (any `Exception` for True, or the given types) are
        also counted in `<stat>.failures`. Without a name: `<module>.<qualified name>`.
        """
        return build(Counted, self, stat, rate, tags, failures)

    def pipeline(self) -> Pipeline:
        """A `Pipeline`: metrics collected and sent together by its `send()` (or at the end of
        its `with` block), as the `statsd` package's pipeline does."""
        from .pipeline import Pipeline  # noqa: PLC0415  (a Client subclass: a cycle at import)

        return Pipeline(self)

    # -- DogStatsD's names (datadog's `DogStatsd`, markus): see docs/migration.md -------------

    def increment(
        self, metric: str, value: float = 1, tags: TagsArg = None, sample_rate: float | None = None
    ) -> None:
        self.incr(metric, value, 1 if sample_rate is None else sample_rate, tags)

    def decrement(
        self, metric: str, value: float = 1, tags: TagsArg = None, sample_rate: float | None = None
    ) -> None:
        self.decr(metric, value, 1 if sample_rate is None else sample_rate, tags)

    def histogram(
        self, metric: str, value: float, tags: TagsArg = None, sample_rate: float | None = None
    ) -> None:
        """A value in a distribution, sent as a timer (`|ms`: every StatsD daemon computes
        the same statistics for it, where the reference counts `|h` as a counter)."""
        try:
            rate = 1 if sample_rate is None else sample_rate
            self._emit(metric, format_histogram(value), TIMER, rate, tags)
        except Exception as exc:
            self._reject(exc)

    distribution = histogram

    # -- control ------------------------------------------------------------------------

    def flush(self) -> None:
        """Send every buffered line now, on the calling thread."""
        try:
            buffer = self._buffer
            if buffer is not None and self._transport is not None:
                lines, dropped = buffer.drain()
                if dropped:
                    self._stats.dropped("queue_full", dropped, "the flusher could not keep up")
                if lines:
                    for payload, count in pack(lines, self._max_size):
                        self._transport.send(payload, count)
            self._send_apart()
        except Exception as exc:
            self._internal_error(exc)
        self._stats.report()

    def _send_apart(self, force: bool = False) -> None:
        """`set_apart`'s members, when their interval is over (or at close): see apart.py."""
        if self._transport is not None:
            payloads, dropped = self._apart.take(force)
            if dropped:
                self._stats.dropped("queue_full", dropped, "the flusher could not keep up")
            for payload, count in payloads:
                self._transport.send(payload, count)

    def close(self) -> None:
        """Send what is buffered and release the socket and the thread. Later metrics are
        dropped (counted as `closed`). Closing twice is harmless."""
        try:
            if self._closed:
                return
            self.flush()
            self._closed = True
            self.redirect(self._capture)
            if self._worker is not None:
                self._worker.stop(self._timeout + 1.0)
            self.flush()  # what arrived between the first flush and the switch
            self._send_apart(force=True)
            if self._transport is not None:
                self._transport.close()
            registry.unregister(self)
        except Exception as exc:
            self._internal_error(exc)

    @property
    def config_error(self) -> Exception | None:
        """Why every metric is dropped as `bad_config` (a `ConfigError` names the option), or
        None. The Flask extension raises it at `init_app`, under the setting's name."""
        return self._config_problem

    def stats(self) -> dict[str, object]:
        """What this client sent and dropped: `sent_lines`, `sent_payloads`, `queued_lines`,
        `dropped` (`{reason: lines}`) and `dropped_total`. Counts start at 0 in a forked child."""
        snapshot = self._stats.snapshot()
        snapshot["queued_lines"] = len(self._buffer) if self._buffer is not None else 0
        return snapshot

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = getattr(self._transport, "path", None) or (
            f"{getattr(self._transport, 'host', '?')}:{getattr(self._transport, 'port', '?')}"
        )
        mode = "buffered" if self._buffer is not None else "unbuffered"
        return f"<statsd_metrics.Client {type(self._transport).__name__} {where} {mode}>"

    # -- the line ------------------------------------------------------------------------

    def _emit(
        self, stat: str, value: str, kind: str, rate: float, tags: TagsArg, *, reset: bool = False
    ) -> None:
        head = self._heads[stat]
        if rate == 1 and tags is None:
            tail = self._plain[kind]
        else:
            if tags is None and isinstance(rate, _TAG_SHAPES):
                rate, tags = 1, rate  # tags in the rate's place: DogStatsD's and markus's order
            tail = f"|{kind}"
            if rate != 1:
                sampled = format_rate(rate)  # rejects a bad rate before sampling
                if self._random() >= rate:
                    return
                if not reset:  # the `0`-then-value pair goes unmarked, as `statsd` sends it
                    tail += sampled
            tail += self._constant_part if tags is None else self._tags(tags)
        line = head + value + tail
        if reset:
            line = head + "0" + tail + "\n" + line
        self._write(line)

    def _tags(self, tags: TagsArg) -> str:
        try:
            if isinstance(tags, dict):
                return self._tag_parts[tuple(tags.items())]
            if isinstance(tags, list | tuple):
                return self._tag_parts[tuple(tags)]
        except TypeError:  # unhashable tag values: formatted on every call
            pass
        return format_tags(tags, self._constant)  # other shapes: formatted, or rejected

    def _format_tags(self, key: tuple) -> str:
        """Tags from their cache key: a dict's items, or the tuple of a list of strings."""
        return format_tags(dict(key) if key and isinstance(key[0], tuple) else key, self._constant)

    # -- where lines go --------------------------------------------------------------------

    def redirect(self, capture: registry.Capture | None) -> None:
        """Point `_write` where lines must go now. Part of `registry.Member`, the interface
        the registry (the test recorder, at fork and at exit) uses; not for applications."""
        self._capture = capture
        self._random = (lambda: 0.0) if capture is not None else self._random_source
        if self._closed:
            self._write = self._drop_closed
        elif capture is not None:
            self._write = capture
        elif self._config_error is not None:
            self._write = self._drop_bad_config
        elif self._buffer is not None:
            self._write = self._buffer.add
        else:
            self._write = self._send_now

    def _send_now(self, line: str) -> None:
        payload = line.encode("ascii")
        self._transport.send(payload, payload.count(b"\n") + 1)  # type: ignore[union-attr]
        if self._stats.unreported:
            self._stats.report()

    def _write_lines(self, lines: list[str]) -> None:
        """A pipeline's lines, sent together: packed into as few payloads as possible, each
        queued (buffered) or sent (unbuffered) whole."""
        try:
            write = self._write
            if write == self._send_now or (self._buffer is not None and write == self._buffer.add):
                for payload, count in pack(lines, self._max_size):
                    if write == self._send_now:
                        self._transport.send(payload, count)  # type: ignore[union-attr]
                    else:
                        write(payload.decode("ascii"))
                self._stats.report()
            else:  # the recorder, or a client that drops everything
                for line in lines:
                    write(line)
        except Rejected as exc:
            self._stats.dropped(exc.reason, len(lines), str(exc))
            self._stats.report()
        except Exception as exc:
            self._reject(exc)

    def _drop_closed(self, line: str) -> None:
        raise Rejected("closed", "the client is closed")

    def _drop_bad_config(self, line: str) -> None:
        raise Rejected("bad_config", self._config_error or "")

    def _tick(self) -> float:
        """One round of the background thread; returns the wait before the next.

        Re-resolve the host when due. Flush when a payload's worth of lines is waiting, or
        when lines have waited about a flush interval: the thread looks `ROUNDS` times per
        interval, so a full payload leaves within a fifth of the interval, any line within it.
        """
        poll = self._interval / ROUNDS
        try:
            transport = self._transport
            if isinstance(transport, NetworkTransport) and transport.resolves and transport.due():
                transport.use(transport.lookup())
            buffer = self._buffer
            if buffer is None:
                return RETRY_INTERVAL
            waiting = len(buffer)
            self._rounds = self._rounds + 1 if waiting else 0
            if waiting >= buffer.per_payload or self._rounds >= ROUNDS:
                self._rounds = 0
                self.flush()
            self._send_apart()  # set_apart's members, at each turn of their own interval
        except Exception as exc:
            self._internal_error(exc)
        return poll

    def _reject(self, exc: Exception) -> None:
        try:
            if isinstance(exc, Rejected):
                self._stats.dropped(exc.reason, 1, str(exc))
            elif isinstance(exc, TypeError | ValueError):
                # the type only: the message may quote an argument, which may be personal data
                self._stats.dropped("bad_argument", 1, type(exc).__name__)
            else:
                self._internal_error(exc)
            self._stats.report()
        except Exception:  # the last line of defence must not raise either
            pass

    def _internal_error(self, exc: Exception) -> None:
        self._stats.dropped("error", 1, f"{type(exc).__name__}: {exc}")
        logger.debug("statsd_metrics: internal error", exc_info=exc)

    def after_fork(self) -> None:
        """In a forked child: a fresh account and socket, an empty buffer, and a new flusher
        thread. Part of `registry.Member`; the registry calls it, applications do not."""
        self._stats.reset()
        if self._buffer is not None:
            self._buffer.clear()
        self._apart.clear()
        if self._transport is not None:
            self._transport.after_fork()
        if self._worker is not None and not self._closed:
            self._worker.after_fork()
