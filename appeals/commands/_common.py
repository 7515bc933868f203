"""Helpers shared by commands: settings with a clean error, reading secrets from stdin."""

from __future__ import annotations

import sys

import click

from config import ConfigError, Settings


def bootstrap(check_schema: bool = True) -> Settings:
    """Read settings from the environment and bind the database, or exit with one clear line.

    With `check_schema`, an unmigrated or outdated database is refused here, naming
    `appeals db upgrade`, rather than failing later with a traceback.
    """
    from appeals import runtime

    try:
        settings = runtime.bootstrap(Settings.from_env())
    except ConfigError as exc:
        raise click.ClickException(f"Configuration error: {exc}") from None
    if check_schema:
        problem = database_problem(settings.database_url)
        if problem:
            raise click.ClickException(problem)
    return settings


def database_problem(database_url: str) -> str | None:
    """One line saying why the database at `database_url` cannot be used (unmigrated, outdated,
    unreachable), or None. Shared by the commands and the worker's job of `corrections apply`,
    so both print the same line."""
    from sqlalchemy.exc import SQLAlchemyError

    from appeals import db, schema

    try:
        schema.check(db.make_engine(database_url))
    except schema.SchemaOutdated as exc:
        return str(exc)
    except SQLAlchemyError as exc:
        return (f"The database cannot be reached: {exc.__class__.__name__}: "
                f"{str(exc.orig if getattr(exc, 'orig', None) else exc).splitlines()[0]}")
    return None


def read_password_stdin() -> str:
    """The first line of standard input, without its line end; refuses an empty one."""
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        raise click.UsageError("--password-stdin expects the password on standard input.")
    return line
