"""Imports and re-derivations under the dataset lock, with the ledger's standing decisions applied. No Flask.

An import and a correction run take the same lock (jobs.LOCK_NAME), and the ledger is read
after the lock is taken: a decision committed before the lock was free is in the list the
engine applies, and one committed later belongs to a run that starts after the import has
published, and so corrects the new dataset too.
"""

from __future__ import annotations

from pathlib import Path

from appeals import db, runtime
from appeals.services import corrections
from workers import jobs, locks, queues
from workers.engine import faults
from workers.engine.errors import ImportFailed


def _ledger() -> list[dict]:
    from sqlalchemy.exc import OperationalError, ProgrammingError

    try:
        return corrections.standing_decisions()
    except (OperationalError, ProgrammingError):
        db.session.rollback()
        raise ImportFailed("the database has no ledger of standing decisions: run `appeals db upgrade` first") from None


def _locked(work):
    settings = jobs.ensure_bootstrapped()
    try:
        with locks.held(queues.connect(), jobs.LOCK_NAME, settings.lock_seconds, wait=settings.lock_wait_seconds,
                        floor=corrections.fence_floor()):
            db.session.rollback()
            return work(runtime.engine(), _ledger())
    except locks.LockBusy:
        raise ImportFailed("a correction run or another import holds the dataset lock; try again later") from None
    finally:
        db.session.remove()


def import_dataset(src_dir: Path, name: str, progress: bool = False):
    """Publish release 1 of `name` from src_dir with every standing decision applied (under the lock);
    then ask for the activity summaries of the open appeals it holds."""

    def work(engine, ledger):
        faults.checkpoint("import_locked")
        return engine.import_dataset(Path(src_dir), name, progress=progress, decisions=ledger)

    v = _locked(work)
    jobs.after_publication({name: v.version})
    return v


def rederive(name: str, progress: bool = False):
    """Publish the next release of `name` under the current rules and ledger; tell earlier downloaders."""
    v = _locked(lambda engine, ledger: engine.rederive(name, ledger, progress=progress))
    jobs.notify_downloaders({name: v.version})
    jobs.after_publication({name: v.version})
    return v
