"""Shared helpers of the engine's click commands: settings -> Engine, clean errors."""

from __future__ import annotations

import functools
import sys

import click


def engine():
    """An Engine over the configured release store and hash key (no Flask, no app context)."""
    from config import Settings
    from workers.engine import faults
    from workers.engine.api import Engine
    from workers.engine.store import open_store

    s = Settings.from_env()
    faults.arm(s.fault_kill_at, s.fault_pause_at)
    return Engine(s.data_dir, s.hash_key, s.hash_key_id, store=open_store(s))


def progress() -> bool:
    """Progress bars only when a person watches stderr."""
    return sys.stderr.isatty()


def clean_errors(fn):
    """Turn engine/config errors into a message on stderr and exit code 1, without a traceback."""

    @functools.wraps(fn)
    def wrapper(*a, **kw):
        from config import ConfigError
        from workers.engine.errors import EngineError

        try:
            return fn(*a, **kw)
        except (EngineError, ConfigError, OSError) as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(1)

    return wrapper
