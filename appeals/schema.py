"""Running the Alembic migrations from code: the only way the schema is created outside tests."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str) -> Config:
    """An Alembic configuration for the database at `url`."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at `url` up to `revision`."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    """Migrate the database at `url` down to `revision`."""
    command.downgrade(alembic_config(url), revision)


def heads() -> list[str]:
    """The head revisions of the migration scripts (there must be exactly one)."""
    return list(_heads())


@functools.lru_cache(maxsize=1)
def _heads() -> tuple[str, ...]:
    return tuple(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())


class SchemaOutdated(RuntimeError):
    """The database has not been migrated, or not to this version's head; the message says what to run."""


UPGRADE = "run `appeals db upgrade`"


def check(engine) -> None:
    """Raise SchemaOutdated unless the database behind `engine` is at the migration head."""
    from alembic.runtime.migration import MigrationContext

    quiet = logging.getLogger("alembic.runtime.migration")
    level = quiet.level
    quiet.setLevel(logging.WARNING)  # a check, not a migration: no "Context impl" lines
    try:
        with engine.connect() as conn:
            current = set(MigrationContext.configure(conn).get_current_heads())
    finally:
        quiet.setLevel(level)
    wanted = set(_heads())
    if current == wanted:
        return
    if not current:
        raise SchemaOutdated(f"The database has no schema yet; {UPGRADE}.")
    raise SchemaOutdated(f"The database schema is at {', '.join(sorted(current))}, this version needs "
                         f"{', '.join(sorted(wanted))}; {UPGRADE}.")
