"""`appeals db upgrade|downgrade|heads`: run the Alembic migrations on the configured database."""

from __future__ import annotations

import click

from appeals.commands._common import bootstrap


@click.group("db")
def db_group() -> None:
    """Database schema migrations."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def upgrade(revision: str) -> None:
    """Migrate the database up to REVISION."""
    from appeals import schema

    settings = bootstrap(check_schema=False)
    schema.upgrade(settings.database_url, revision)
    click.echo(f"database at {revision}")


@db_group.command("downgrade")
@click.option("--revision", required=True, help="target revision, e.g. base")
def downgrade(revision: str) -> None:
    """Migrate the database down to REVISION."""
    from appeals import schema

    settings = bootstrap(check_schema=False)
    schema.downgrade(settings.database_url, revision)
    click.echo(f"database at {revision}")


@db_group.command("heads")
def heads() -> None:
    """Print the head revision(s) of the migration scripts."""
    from appeals import schema

    for head in schema.heads():
        click.echo(head)


commands = [db_group]
