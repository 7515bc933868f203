"""Running the Alembic migrations from code: the only way the schema is created outside tests."""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str):
    """An Alembic configuration for the database at `url`."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at `url` up to `revision`."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    """Migrate the database at `url` down to `revision`."""
    from alembic import command

    command.downgrade(alembic_config(url), revision)


def heads() -> list[str]:
    """The head revisions of the migration scripts, as Alembic computes them (there must be exactly one)."""
    from alembic.script import ScriptDirectory

    return list(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())


# `revision = "…"` / `down_revision: str | None = "…"  # comment`, at the start of a line (module level).
_REVISION_LINE = re.compile(r"^(?:down_)?revision\b\s*(?::[^=\n]*)?=.*$", re.M)


@functools.lru_cache(maxsize=1)
def script_heads() -> frozenset[str]:
    """The same heads read straight from the scripts' `revision`/`down_revision` lines.

    Importing Alembic costs most of a command's start-up; a check before every command
    only needs these two assignments of each script (a test keeps it equal to `heads()`).
    """
    revisions, parents = set(), set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        # Only the two assignment lines are parsed: parsing whole scripts (data migrations
        # included) cost 30 ms or more on every command.
        for line in _REVISION_LINE.findall(path.read_text(encoding="utf-8")):
            node = ast.parse(line).body[0]
            name = node.target.id if isinstance(node, ast.AnnAssign) else node.targets[0].id
            value = ast.literal_eval(node.value)
            if name == "revision":
                revisions.add(value)
            else:
                parents.update(value if isinstance(value, (tuple, list)) else [value] if value else [])
    return frozenset(revisions - parents)


class SchemaOutdated(RuntimeError):
    """The database has not been migrated, or not to this version's head; the message says what to run."""


UPGRADE = "run `appeals db upgrade`"


def current_revisions(engine) -> set[str]:
    """The revisions the database is at (empty when it was never migrated)."""
    from sqlalchemy import inspect, text

    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return set()
        return set(conn.scalars(text("SELECT version_num FROM alembic_version")))


def check(engine) -> None:
    """Raise SchemaOutdated unless the database behind `engine` is at the migration head."""
    current, wanted = current_revisions(engine), set(script_heads())
    if current == wanted:
        return
    if not current:
        raise SchemaOutdated(f"The database has no schema yet; {UPGRADE}.")
    raise SchemaOutdated(f"The database schema is at {', '.join(sorted(current))}, this version needs "
                         f"{', '.join(sorted(wanted))}; {UPGRADE}.")
