"""`appeals serve`: the web application under gunicorn (configured in code, no config file)."""

from __future__ import annotations

import os

import click


def make_server(host: str, port: int, workers: int = 2, threads: int = 4, access_log: bool = True):
    """A gunicorn application serving `appeals.create_app()` on host:port (call `.run()`)."""
    from gunicorn.app.base import BaseApplication

    class AppealsServer(BaseApplication):
        """gunicorn driven from code: each worker process builds its own app after the fork."""

        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("threads", threads)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("accesslog", "-" if access_log else None)
            self.cfg.set("proc_name", "appeals-web")
            # No control socket: its default path is per user, so two servers on one machine would clash.
            self.cfg.set("control_socket_disable", True)
            # Not preloaded: database and Redis connections are opened per worker, never shared across fork.
            self.cfg.set("preload_app", False)

        def load(self):
            from appeals import create_app

            return create_app()

    return AppealsServer()


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64), help="gunicorn worker processes.")
def serve(host: str, port: int, workers: int) -> None:
    """Serve the web application with gunicorn.

    Outside APPEALS_MODE=demo/test/development this needs the production settings
    (APPEALS_SECRET_KEY, APPEALS_HASH_KEY, a database and Redis); it refuses to start without them.
    """
    from config import ConfigError, Settings

    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        raise click.ClickException(f"Configuration error: {exc}") from None
    if not settings.is_relaxed and settings.database_url.startswith("sqlite"):
        click.echo("Warning: serving production from SQLite; set APPEALS_DATABASE_URL to PostgreSQL.", err=True)
    _warn_if_unmigrated(settings)
    if not settings.redis_url:
        from workers.connection import redis_url

        # This process owns the embedded server; gunicorn's workers connect to it by URL.
        os.environ["APPEALS_REDIS_URL"] = redis_url(settings)
    click.echo(f"Serving on http://{host}:{port} (mode {settings.mode})")
    make_server(host, port, workers=workers).run()


def _warn_if_unmigrated(settings) -> None:
    """One line on stderr when the pages will answer 503 until the database is migrated."""
    from sqlalchemy.exc import SQLAlchemyError

    from appeals import db, schema

    try:
        schema.check(db.make_engine(settings.database_url))
    except schema.SchemaOutdated as exc:
        click.echo(f"Warning: {exc} (until then every page answers 503)", err=True)
    except SQLAlchemyError:
        pass  # unreachable now; each request says so when it matters
    finally:
        db.dispose_engines()  # gunicorn forks after this: no pooled connection may cross the fork


commands = [serve]
