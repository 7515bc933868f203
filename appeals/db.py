"""SQLAlchemy setup shared by the web app, the workers and the CLI, without Flask.

One scoped session per thread (a web request or a job). `init_db` binds it to
an engine; nothing connects at import time.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

from sqlalchemy import MetaData, create_engine, event, exc
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, scoped_session, sessionmaker

# Stable constraint names, so Alembic migrations are the same on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every model."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


session = scoped_session(sessionmaker(expire_on_commit=False))

_engines: dict[str, Engine] = {}
_autocommit_engines: dict[Engine, Engine] = {}


class ReadOnlySession(Exception):
    """A read-only session (see `begin_read_only`) was asked to write."""


def begin_read_only() -> bool:
    """Start this thread's session for a read-only request: its connection runs in autocommit.

    Why: in the default mode every request spends two round trips on its transaction, BEGIN before
    the first statement and ROLLBACK when the session is removed; a request that only reads needs
    neither. Consistency is unchanged on PostgreSQL: at its default READ COMMITTED level each
    statement already takes its own snapshot, in a transaction or not. The session refuses to flush,
    so a write slipped into a read-only request fails loudly instead of committing statement by
    statement. Returns False (and changes nothing) when the thread's session already exists or no
    engine is bound yet (`init_db`).
    """
    engine = session.session_factory.kw.get("bind")
    if engine is None or session.registry.has():
        return False
    autocommit = _autocommit_engines.get(engine)
    if autocommit is None:
        # A view of the same engine and pool: setting autocommit on a psycopg or sqlite3 connection is
        # a local flag (no round trip), and the pool puts the connection back in its default mode.
        autocommit = _autocommit_engines[engine] = engine.execution_options(isolation_level="AUTOCOMMIT")
    session(bind=autocommit, info={"read_only": True})
    return True


@event.listens_for(Session, "before_flush")
def _refuse_writes(flushing: Session, _context, _instances) -> None:
    if flushing.info.get("read_only") and (flushing.new or flushing.dirty or flushing.deleted):
        raise ReadOnlySession("this request's session is read-only (db.begin_read_only); it cannot write")


def utcnow() -> datetime:
    """Current time as naive UTC: every timestamp in the database is naive UTC."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # Foreign keys are off by default in SQLite; WAL lets the worker write while the web reads.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


# A pooled connection that sat idle this long is pinged before use; one in steady use is not.
# Why: `pool_pre_ping` spent a round trip on every request (the queue API's hot path) to guard against
# connections the server or the network dropped, which happens to connections left idle (restarts,
# idle timeouts, NAT), not to one handed back milliseconds ago. A connection that dies while in use
# still fails that one request; SQLAlchemy then invalidates the whole pool (its "optimistic"
# disconnect handling), so the next checkout connects afresh.
PING_AFTER_IDLE_SECONDS = 10.0


def _note_checkin(_dbapi_connection, record) -> None:
    record.info["checked_in_at"] = time.monotonic()


def _ping_if_idle(engine: Engine):
    def ping(dbapi_connection, record, _proxy) -> None:
        checked_in_at = record.info.get("checked_in_at")  # None: a fresh connection, just opened
        if checked_in_at is None or time.monotonic() - checked_in_at < PING_AFTER_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as error:  # any failure means this connection cannot be trusted
            # The pool discards this connection and checks out a new one (SQLAlchemy's documented retry).
            raise exc.DisconnectionError(f"idle connection failed its ping: {error}") from error
    return ping


def make_engine(url: str) -> Engine:
    """Create (once per URL and process) the SQLAlchemy engine for `url`."""
    engine = _engines.get(url)
    if engine is None:
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://"):]
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"timeout": 30})
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(url)
            event.listen(engine, "checkin", _note_checkin)
            event.listen(engine, "checkout", _ping_if_idle(engine))
        _engines[url] = engine
    return engine


def init_db(url: str) -> Engine:
    """Bind the scoped session to the database at `url` and return its engine."""
    engine = make_engine(url)
    session.remove()
    session.configure(bind=engine)
    return engine


def dispose_engines() -> None:
    """Drop pooled connections, e.g. after fork, so children never share a socket."""
    session.remove()
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()
    _autocommit_engines.clear()


def forget_engines_after_fork() -> None:
    """In a forked child: drop the parent's pooled connections without closing them (they are the parent's)."""
    for engine in list(_engines.values()):
        engine.dispose(close=False)
