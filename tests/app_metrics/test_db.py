"""SQLAlchemy metrics: queries by kind, errors by type, the pool's levels."""

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.pool import QueuePool, StaticPool

from statsd_metrics.db import instrument_engine, statement_kind


@pytest.fixture
def engine(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path}/t.db", poolclass=QueuePool, pool_size=2,
                           max_overflow=2)  # fmt: skip
    yield engine
    engine.dispose()


@pytest.mark.parametrize(
    ("statement", "kind"),
    [
        ("SELECT 1", "select"),
        ("  \n(select * from t)", "select"),
        ("insert into t values (1)", "insert"),
        ("UPDATE t SET a=1", "update"),
        ("delete from t", "delete"),
        ("WITH x AS (SELECT 1) SELECT * FROM x", "with"),
        ("VACUUM", "other"),
        ("", "other"),
    ],
)
def test_statement_kind(statement, kind):
    assert statement_kind(statement) == kind


def test_queries_are_timed_by_kind_never_by_text(engine, client, statsd_recorder):
    instrument_engine(engine, client, name="main")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT UNIQUE)"))
        conn.execute(text("INSERT INTO users (email) VALUES ('ana@example.org')"))
        conn.execute(text("SELECT email FROM users WHERE email = :e"), {"e": "ana@example.org"})
        conn.execute(text("UPDATE users SET email = 'bo@example.org'"))
        conn.execute(text("DELETE FROM users"))
    for kind in ("create", "insert", "select", "update", "delete"):
        timing = statsd_recorder.assert_timing(f"app.db.main.query.{kind}")
        assert 0 <= timing.value < 1000
    for metric in statsd_recorder.metrics:
        assert "example" not in metric.name
        assert "example" not in str(metric.value)


def test_errors_are_counted_by_type(engine, client, statsd_recorder):
    instrument_engine(engine, client, name="main")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (1)"))
    with pytest.raises(OperationalError), engine.connect() as conn:
        conn.execute(text("SELEKT nonsense"))
    statsd_recorder.assert_incr("app.db.main.errors.IntegrityError")
    statsd_recorder.assert_incr("app.db.main.errors.OperationalError")
    # The failed statements' timers are unwound: the next query is timed normally.
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    assert statsd_recorder.filter("app.db.main.query.select")


def test_pool_in_use_overflow_and_size(engine, client, statsd_recorder, report_all):
    metrics = instrument_engine(engine, client, name="main")
    conns = [engine.connect() for _ in range(3)]  # two from the pool, one overflow
    assert (metrics.in_use.level, metrics.overflow.level, metrics.size.level) == (3, 1, 2)
    report_all()
    statsd_recorder.assert_gauge("app.db.main.pool.size", 2, delta=True)
    statsd_recorder.assert_gauge("app.db.main.pool.in_use", 3, delta=True)
    statsd_recorder.assert_gauge("app.db.main.pool.overflow", 1, delta=True)
    for conn in conns:
        conn.close()
    assert (metrics.in_use.level, metrics.overflow.level) == (0, 0)
    report_all()
    statsd_recorder.assert_gauge("app.db.main.pool.in_use", -3, delta=True)
    statsd_recorder.assert_gauge("app.db.main.pool.overflow", -1, delta=True)


def test_pools_without_a_fixed_size_report_no_pool_levels(client, statsd_recorder, report_all):
    engine = create_engine("sqlite://", poolclass=StaticPool)  # one connection, shared
    metrics = instrument_engine(engine, client, name="mem")
    a, b = engine.connect(), engine.connect()
    a.close()
    b.close()
    report_all()
    assert metrics.in_use.level == 0
    assert not [n for n in statsd_recorder.names() if ".pool." in n]
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    statsd_recorder.assert_timing("app.db.mem.query.select")  # queries are still timed


def test_instrumenting_twice_changes_nothing(engine, client, statsd_recorder):
    assert instrument_engine(engine, client) is instrument_engine(engine, client)
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    assert len(statsd_recorder.filter("app.db.main.query.select")) == 1
