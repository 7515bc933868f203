"""SQLAlchemy setup shared by the web app, the workers and the CLI, without Flask.

One scoped session per thread (a web request or a job). `init_db` binds it to
an engine; nothing connects at import time.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import MetaData, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, scoped_session, sessionmaker

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
            engine = create_engine(url, pool_pre_ping=True)
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


def forget_engines_after_fork() -> None:
    """In a forked child: drop the parent's pooled connections without closing them (they are the parent's)."""
    for engine in list(_engines.values()):
        engine.dispose(close=False)
