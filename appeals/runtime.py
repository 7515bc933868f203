"""The process's resolved settings and its handles on the database and the dataset engine.

The web app, the worker and the CLI each call `bootstrap(settings)` once; services
read `settings()` and `engine()` instead of reaching into Flask.
"""

from __future__ import annotations

from config import Settings

_state: dict = {}


def bootstrap(settings: Settings) -> Settings:
    """Make `settings` current for this process, bind the database session and the work dispatchers.

    Every process starts here (create_app, the worker, the command line), so this is
    where the services' dispatch is bound to the RQ senders of `workers.dispatch`.
    """
    from appeals import db
    from workers import dispatch as senders  # here, not at the top: RQ loads only in a started process
    from workers.engine import faults

    settings.home.mkdir(parents=True, exist_ok=True)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    _state.clear()
    _state["settings"] = settings
    db.init_db(settings.database_url)
    senders.install()
    faults.arm(settings.fault_kill_at, settings.fault_pause_at)
    return settings


def settings() -> Settings:
    """The current settings; bootstrap must have run."""
    try:
        return _state["settings"]
    except KeyError:
        raise RuntimeError("appeals.runtime.bootstrap() has not been called") from None


def engine():
    """The dataset engine over the configured release store (created on first use)."""
    eng = _state.get("engine")
    if eng is None:
        from workers.engine.api import Engine
        from workers.engine.store import open_store

        s = settings()
        eng = _state["engine"] = Engine(s.data_dir, s.hash_key, s.hash_key_id, store=open_store(s))
    return eng


def release() -> None:
    """Close the engine's index and the database connections of a process about to exit (if it bootstrapped).

    SQLite checkpoints and removes its WAL files when the last connection closes; a command
    closes them here rather than leaving it to the interpreter's teardown (see appeals.cli.main).
    """
    if "settings" not in _state:
        return
    eng = _state.pop("engine", None)
    if eng is not None:
        eng.index.close()
    from appeals import db

    db.dispose_engines()
