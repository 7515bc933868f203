"""The PostgreSQL pool's guard against dropped connections (`appeals.db`): a connection that sat idle is
pinged and replaced if dead; one in steady use is not pinged, and a drop then fails one use only."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import exc, text

from appeals import db

URL = os.environ.get("APPEALS_TEST_DATABASE_URL", "")
pytestmark = pytest.mark.skipif(not URL.startswith("postgresql"), reason="the ping guards PostgreSQL pools only")


@pytest.fixture
def pool_engine(database_url):
    """An engine of its own (a distinct URL), one pooled connection, so each checkout reuses it."""
    url = database_url + ("&" if "?" in database_url else "?") + "application_name=pool_test"
    engine = db.make_engine(url)
    yield engine
    engine.dispose()
    db._engines.pop(url, None)


def _pid(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT pg_backend_pid()")).scalar()


def _kill(engine, pid: int) -> None:
    # From a separate, unpooled connection: the pooled one must not be the one doing it.
    with engine.pool._creator() as killer:
        killer.autocommit = True
        killer.execute("SELECT pg_terminate_backend(%s)", (pid,))


def _count_pings(engine, monkeypatch) -> list:
    """The pings the pool sends from now on (SQLAlchemy's own pre-ping goes through the same dialect call)."""
    pings, ping = [], engine.dialect.do_ping

    def counted(dbapi_connection):
        pings.append(dbapi_connection)
        return ping(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    return pings


def test_a_busy_connection_is_not_pinged(pool_engine, monkeypatch):
    first = _pid(pool_engine)
    pings = _count_pings(pool_engine, monkeypatch)
    for _ in range(5):
        assert _pid(pool_engine) == first  # the same pooled connection, handed back milliseconds ago
    assert pings == []  # no ping round trip before each use


def test_an_idle_dead_connection_is_replaced_before_use(pool_engine, monkeypatch):
    first = _pid(pool_engine)
    _kill(pool_engine, first)
    pings = _count_pings(pool_engine, monkeypatch)
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)  # as if it had sat idle past the limit
    second = _pid(pool_engine)  # no error: the ping failed, the pool connected afresh
    assert second != first and len(pings) == 1  # the fresh connection itself is not pinged


def test_a_connection_dropped_while_in_steady_use_fails_once_then_the_pool_recovers(pool_engine):
    first = _pid(pool_engine)
    _kill(pool_engine, first)
    with pytest.raises(exc.OperationalError) as raised:
        _pid(pool_engine)  # not pinged (it was just handed back): this one use fails...
    assert raised.value.connection_invalidated
    assert _pid(pool_engine) != first  # ...and the next gets a new connection
