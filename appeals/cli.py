"""The `appeals` command: the product's command groups, with Flask's own commands (`run`, `shell`, `routes`) behind them.

Flask is imported only when one of Flask's commands is asked for: `appeals --help` and the
operator's commands start without the web stack (and without a database or Redis).
"""

from __future__ import annotations

import gc
import os
import sys
import threading

import click

from config import ConfigError


def _create_app():
    from appeals import create_app

    return create_app()


class AppealsGroup(click.Group):
    """Our commands first (each module imported when its command is used); any other name is looked up
    in Flask's group (loaded on demand)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        from appeals.commands import COMMANDS

        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is not None:
            return command
        from appeals.commands import COMMANDS, load

        if name in COMMANDS:
            command = load(name)
            self.add_command(command, name)
            return command
        from flask.cli import FlaskGroup, ScriptInfo

        if not isinstance(ctx.obj, ScriptInfo):
            ctx.obj = ScriptInfo(create_app=_create_app, set_debug_flag=False)
        return FlaskGroup(create_app=_create_app, add_version_option=False).get_command(ctx, name)

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_epilog(ctx, formatter)
        formatter.write_paragraph()
        formatter.write_text("Flask's own commands (run, shell, routes) work too.")


@click.group(cls=AppealsGroup)
def cli() -> None:
    """Appeals against inclusion in published information-operations datasets."""


# How long a command runs with the cyclic garbage collector paused (see _pause_gc).
GC_PAUSE_SECONDS = 1.0
_gc_paused = False


def main() -> None:
    """Entry point of the `appeals` console script."""
    _pause_gc(GC_PAUSE_SECONDS)
    try:
        cli.main(prog_name="appeals")
    except ConfigError as exc:
        click.echo(f"Configuration error: {exc}", err=True)
        sys.exit(2)
    finally:
        _before_exit()


def _pause_gc(seconds: float) -> None:
    """Run the next `seconds` without cyclic garbage collection, then freeze what exists and collect as usual.

    A command's start is mostly imports (SQLAlchemy, the models, redis-py), which make objects that live as
    long as the process; the collector's passes over them while they are made cost about 10% of a short
    command's CPU. A command that runs longer gets the collector back, its start-up objects frozen out of
    its passes.
    """
    global _gc_paused
    gc.disable()
    _gc_paused = True
    # A child forked meanwhile (gunicorn's workers, RQ's scheduler) has no timer: it collects from the start.
    os.register_at_fork(after_in_child=_resume_gc)
    timer = threading.Timer(seconds, _resume_gc)
    timer.daemon = True
    timer.start()


def _resume_gc() -> None:
    global _gc_paused
    if _gc_paused:
        _gc_paused = False
        gc.freeze()
        gc.enable()


def _before_exit() -> None:
    # The process ends now. Its connections are closed in order first (SQLite checkpoints its
    # WAL); then every object left is frozen out of the garbage collector, whose last passes
    # over the whole heap (SQLAlchemy's, the models') cost a command about 0.1 s of CPU at exit.
    # Nothing is lost: the interpreter still runs atexit handlers and frees memory as before.
    runtime = sys.modules.get("appeals.runtime")
    if runtime is not None:
        try:
            runtime.release()
        except Exception:  # noqa: BLE001 - a failed close must not hide the command's own outcome
            pass
    gc.freeze()
