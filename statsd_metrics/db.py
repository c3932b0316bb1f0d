"""Database metrics from SQLAlchemy events: queries by kind, errors, and the connection pool.

`instrument_engine(engine, client, name="main")` listens on the engine and its pool:

* every statement is timed under `db.<name>.query.<kind>`, where kind is the statement's verb
  (`select`, `insert`, `update`, `delete`, ...; `other` for the rest): never its text, which
  can hold literals;
* failed statements count under `db.<name>.errors.<ExceptionType>`;
* the pool's size, connections checked out and overflow connections are shared gauges
  (`shared_gauge`), summed over all processes using the database under that name; only for
  pools of a fixed size (QueuePool, SQLAlchemy's default for most databases).

Needs SQLAlchemy 2 (`pip install statsd-metrics[sqlalchemy]`).
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from statsd_metrics.binding import ClientBinding
from statsd_metrics.client import Client
from statsd_metrics.paths import segment
from statsd_metrics.shared_gauge import SharedGauge

KINDS = frozenset(
    {
        "select",
        "insert",
        "update",
        "delete",
        "begin",
        "commit",
        "rollback",
        "create",
        "alter",
        "drop",
        "with",
        "pragma",
        "savepoint",
        "release",
    }
)
_STARTS = "statsd_metrics.starts"
_CHECKED_OUT = "statsd_metrics.checked_out"


def statement_kind(statement: str) -> str:
    """The statement's leading verb, lower-cased, if it is a known one; else `other`."""
    verb = statement.lstrip(" \t\r\n(").split(None, 1)[0:1]
    kind = verb[0].lower() if verb else ""
    return kind if kind in KINDS else "other"


class EngineMetrics(ClientBinding):
    """The listeners for one engine; kept on the engine so they live as long as it does."""

    def __init__(self, engine: Engine, client: Client | None, name: str):
        super().__init__(client)
        self.base = f"db.{segment(name)}"
        self.in_use = SharedGauge(client, f"{self.base}.pool.in_use")
        self.overflow = SharedGauge(client, f"{self.base}.pool.overflow")
        self.size = SharedGauge(client, f"{self.base}.pool.size")
        size = getattr(engine.pool, "size", None)  # None for pools without a fixed size
        self._size: int | None = size() if callable(size) else None
        if self._size is not None:
            self.size.set(self._size)
        self._query_names = {k: f"{self.base}.query.{k}" for k in (*KINDS, "other")}

        event.listen(engine, "before_cursor_execute", self.before_execute)
        event.listen(engine, "after_cursor_execute", self.after_execute)
        event.listen(engine, "handle_error", self.on_error)
        if self._size is not None:
            # Only pools of a fixed size hand each connection to one user at a time; StaticPool
            # shares one, NullPool keeps none: "in use" means nothing there.
            event.listen(engine.pool, "checkout", self.on_checkout)
            event.listen(engine.pool, "checkin", self.on_checkin)

    # -- statements -----------------------------------------------------------------------------
    def before_execute(self, conn, *_event_args) -> None:
        conn.info.setdefault(_STARTS, []).append(time.perf_counter())

    def after_execute(self, conn, cursor, statement: str, *_event_args) -> None:
        starts = conn.info.get(_STARTS)
        if starts:
            elapsed_ms = (time.perf_counter() - starts.pop()) * 1000.0
            self.client.timing(self._query_names[statement_kind(statement)], elapsed_ms)

    def on_error(self, context: Any) -> None:
        conn = context.connection
        starts = conn.info.get(_STARTS) if conn is not None and not conn.closed else None
        if starts:
            starts.pop()
        exc = context.sqlalchemy_exception or context.original_exception
        self.client.incr(f"{self.base}.errors.{segment(type(exc).__name__)}")

    # -- pool -----------------------------------------------------------------------------------
    # Overflow is derived from our own count: at "checkin" the pool has not yet closed the
    # surplus connection, so its own overflow() is one behind.
    def _update_overflow(self) -> None:
        if self._size is not None:
            self.overflow.set(max(0, self.in_use.level - self._size))

    # The checkout is marked on the connection record: the checkin of a connection checked
    # out before the engine was instrumented is not ours to count.
    def on_checkout(self, dbapi_conn, record, proxy) -> None:
        record.info[_CHECKED_OUT] = True
        self.in_use.add(1)
        self._update_overflow()

    def on_checkin(self, dbapi_conn, record) -> None:
        if record is not None and record.info.pop(_CHECKED_OUT, False):
            self.in_use.add(-1)
            self._update_overflow()


def instrument_engine(
    engine: Engine, client: Client | None = None, *, name: str = "main"
) -> EngineMetrics:
    """Send `engine`'s query, error and pool metrics under `db.<name>.*` (once per engine)."""
    existing = engine.__dict__.get("_statsd_metrics")
    if existing is not None:
        return existing
    metrics = EngineMetrics(engine, client, name)
    engine.__dict__["_statsd_metrics"] = metrics
    return metrics
