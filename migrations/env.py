"""Alembic environment: migrates the database named by the caller or by APPEALS_DATABASE_URL."""

from __future__ import annotations

from alembic import context

import appeals.models  # noqa: F401  (registers every table on Base.metadata)
from appeals.db import Base, make_engine

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from config import Settings

    return Settings.from_env(mode="development").database_url


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is None:
        connectable = make_engine(_url()).connect()
        owns = True
    else:
        owns = False
    sqlite = connectable.dialect.name == "sqlite"
    if sqlite:
        # Batch mode copies a table and drops the old one; with rows referring to it (a downgrade
        # of a database in use) SQLite's enforced foreign keys would refuse the drop.
        connectable.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connectable.commit()  # end SQLAlchemy's autobegun transaction: Alembic must own the next one
    try:
        # render_as_batch: SQLite can only ALTER tables by copying them.
        context.configure(connection=connectable, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    finally:
        if sqlite:
            connectable.exec_driver_sql("PRAGMA foreign_keys=ON")
            connectable.commit()
        if owns:
            connectable.close()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
