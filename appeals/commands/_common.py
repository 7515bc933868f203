"""Helpers shared by commands: settings with a clean error, reading secrets from stdin."""

from __future__ import annotations

import sys

import click

from config import ConfigError, Settings


def bootstrap() -> Settings:
    """Read settings from the environment and bind the database, or exit with a clear message."""
    from appeals import runtime

    try:
        return runtime.bootstrap(Settings.from_env())
    except ConfigError as exc:
        raise click.ClickException(f"Configuration error: {exc}") from None


def read_password_stdin() -> str:
    """The first line of standard input, without its line end; refuses an empty one."""
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        raise click.UsageError("--password-stdin expects the password on standard input.")
    return line
