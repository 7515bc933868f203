"""`appeals worker [--burst]`: the RQ worker, its scheduler (retry backoff) and the periodic sweep."""

from __future__ import annotations

import logging

import click

from appeals.commands._common import bootstrap


@click.command("worker")
@click.option("--burst", is_flag=True, help="Sweep once, process what is queued and due, then exit.")
@click.option("--name", default=None, help="Worker name shown in RQ (default: appeals-HOST-PID).")
def worker(burst: bool, name: str | None) -> None:
    """Run a correction worker against the configured database, Redis and data directory.

    Start as many as you like, on as many machines as share those three: they
    coordinate through the dataset lock in Redis and the rows in the database.
    """
    from config import ConfigError
    from workers import runner

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    bootstrap()
    try:
        runner.run(burst=burst, name=name)
    except ConfigError as exc:
        raise click.ClickException(f"Configuration error: {exc}") from None


commands = [worker]
