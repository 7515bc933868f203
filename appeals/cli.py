"""The `appeals` command: Flask's CLI group, with the product's command groups mounted on it."""

from __future__ import annotations

import sys

import click
from flask.cli import FlaskGroup

from config import ConfigError


def _create_app():
    from appeals import create_app

    return create_app()


class AppealsGroup(FlaskGroup):
    """Flask's group without loading the app to list commands: `--help` starts no database or Redis.

    The app defines no commands of its own, so there is nothing to find by loading it;
    Flask's `run`, `shell` and `routes` still load it when they are invoked.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load_plugin_commands()
        return sorted(self.commands)


@click.group(cls=AppealsGroup, create_app=_create_app, add_version_option=False)
def cli() -> None:
    """Appeals against inclusion in published information-operations datasets."""


def _mount() -> None:
    from appeals.commands import COMMANDS

    for command in COMMANDS:
        cli.add_command(command)


_mount()


def main() -> None:
    """Entry point of the `appeals` console script."""
    try:
        cli.main(prog_name="appeals")
    except ConfigError as exc:
        click.echo(f"Configuration error: {exc}", err=True)
        sys.exit(2)
