"""RQ jobs of the correction pipeline: the coalescing run and the sweep. No Flask here.

A run holds the dataset lock for its whole life, so whatever it finds `queued` (or
left `running` by a dead worker) is its to take. Its engine batch id is derived
from the corrections it took, so a re-run after a crash publishes nothing twice.
"""

from __future__ import annotations

import json
import logging

import redis
from rq import get_current_job

from appeals import db, runtime
from appeals.db import utcnow
from appeals.requests import iso
from appeals.services import corrections, dispatch, downloads, notify, review
from config import Settings
from workers import locks, queues
from workers.engine import faults
from workers.engine.errors import (
    BadCorrection,
    ImportFailed,
    UnknownDataset,
    UnknownFile,
    UnknownVersion,
    VerificationFailed,
)

log = logging.getLogger("appeals.jobs")

# One lock for every dataset: a run coalesces every queued correction, and those can
# touch any dataset; finer locks would let two runs split the queue and publish two
# releases of a dataset where one suffices.
LOCK_NAME = "datasets"

# Retrying cannot fix these: the run fails at once, with the reason, for a person to look at.
PERMANENT_ERRORS = (VerificationFailed, BadCorrection, UnknownDataset, UnknownVersion, UnknownFile, ImportFailed)


def ensure_bootstrapped() -> Settings:
    """The process's settings, bootstrapping from the environment if nobody has yet."""
    try:
        return runtime.settings()
    except RuntimeError:
        return runtime.bootstrap(Settings.from_env())


def run_corrections(correction_id: int | None = None) -> dict:
    """Take and apply every pending correction under the dataset lock; the job of `correction-<id>`.

    `correction_id` names the correction whose confirmation enqueued this job; the run
    takes all of them anyway. Returns what was done, for the job's result.
    """
    settings = ensure_bootstrapped()
    connection = queues.connect()
    job = get_current_job()
    job_id = job.id if job else None
    outcomes: list[dict] = []
    try:
        with locks.held(connection, LOCK_NAME, settings.lock_seconds, wait=settings.lock_wait_seconds,
                        floor=corrections.fence_floor()) as lock:
            for run_id in corrections.interrupted_runs():
                run = corrections.resume(run_id, job_id, lock.token)
                outcomes.append(execute(run.id, run.items, lock, job=job))
            # Corrections confirmed while a run was applying are taken by the next turn.
            while (run := corrections.take_queued(job_id, lock.token)) is not None:
                outcomes.append(execute(run.id, run.items, lock, job=job))
    except locks.LockBusy:
        # The holder takes every queued correction before letting go; the sweep covers the rest.
        log.info("dataset lock busy; correction %s is left to the current run", correction_id)
        return {"busy": True, "runs": []}
    finally:
        db.session.remove()
    return {"busy": False, "runs": outcomes}


def execute(run_id: str, items, lock: locks.Lock, job=None, reason: str = "") -> dict:
    """Apply one run's batch with the engine under `lock`'s fence, then record it (shared with the CLI).

    Permanent engine errors fail the run at once; anything else propagates for RQ to retry.
    """
    if job is not None:
        # The failure callback needs to know which run a dead or failing job was applying.
        job.meta["run_id"] = run_id
        try:
            job.save_meta()
        except redis.RedisError:
            # Redis is away: the run goes on (its record is in the database and the lock
            # re-claims itself); without the note a failure is left to the sweep, not the callback.
            log.warning("could not note run %s on job %s; carrying on", run_id, job.id, exc_info=True)
    corrections.set_progress(run_id, 0.1)
    screen_names = corrections.directory_names(item[0] for item in items)
    for uid, name in corrections.ledger_screen_names(item[0] for item in items).items():
        screen_names.setdefault(uid, name)
    # Long file work ahead: give the connection back rather than hold a transaction open.
    db.session.remove()
    engine = runtime.engine()
    # The ledger keeps the screen names a decision concerns: later imports replace their @handles.
    known = {uid: engine.known_screen_names(uid) | ({screen_names[uid].lower()} if uid in screen_names else set())
             for uid, _ in items}
    try:
        result = engine.apply(run_id, [tuple(item) for item in items], reason=reason or run_id,
                              fence=lock.token, screen_names=screen_names)
    except PERMANENT_ERRORS as exc:
        corrections.fail(run_id, f"{type(exc).__name__}: {exc}")
        return {"run": run_id, "status": "failed", "error": str(exc)}
    faults.checkpoint("before_commit")
    decisions = [{"user_id": uid, "remedy": remedy, "epoch": engine.standing_epoch(uid),
                  "screen_names": sorted(known[uid])} for uid, remedy in items]
    releases = corrections.finish(run_id, result, decisions)
    if releases:
        notify_downloaders(releases)
    return {"run": run_id, "status": "done", "releases": releases or {},
            "already_applied": bool(result.already_applied), "noop": [list(n) for n in result.noop or []]}


class OperatorError(Exception):
    """An operator's batch could not be applied; the message says why."""


def operator_apply(items: list[list[str]], reason: str, actor) -> dict:
    """The command line's correction: the same lock, engine call and records as a worker run, synchronously.

    Idempotent per decision, not per request: an item whose decision already stands, in a corpus
    that obeys it, is left out (`already_standing`); when every item is, nothing is published. The
    batch id is derived from the remaining items and the decisions recorded for their accounts so
    far, so a retry after a crash publishes once, and the same request after a later import or a
    revocation is a new batch.
    """
    import hashlib

    settings = ensure_bootstrapped()
    try:
        with locks.held(queues.connect(), LOCK_NAME, settings.lock_seconds, wait=settings.lock_wait_seconds,
                        floor=corrections.fence_floor()) as lock:
            engine = runtime.engine()
            standing = corrections.standing_for(uid for uid, _ in items)
            already = sorted(uid for uid, remedy in items if uid in standing and standing[uid].remedy == remedy
                             and not engine.disobeying(uid, remedy, standing[uid].epoch,
                                                       standing[uid].screen_names or ()))
            todo = [list(i) for i in items if i[0] not in already]
            history = corrections.decision_history(uid for uid, _ in todo)
            db.session.rollback()
            if not todo:
                return {"run": None, "status": "done", "releases": {}, "already_applied": False, "noop": [],
                        "already_standing": already, "recorded": []}
            key = json.dumps([sorted(todo), [history[uid] for uid, _ in sorted(todo)]])
            batch_id = f"op-{hashlib.sha256(key.encode()).hexdigest()[:16]}"
            corrections.start_operator_run(batch_id, todo, lock.token, actor, reason)
            try:
                outcome = execute(batch_id, todo, lock, reason=reason)
            except Exception as exc:
                corrections.fail(batch_id, f"{type(exc).__name__}: {exc}")
                raise OperatorError(f"{type(exc).__name__}: {exc}") from exc
    except locks.LockBusy:
        raise OperatorError("A correction run or an import is in progress; try again when it has finished.") from None
    finally:
        db.session.remove()
    if outcome["status"] == "failed":
        raise OperatorError(f"Nothing was published: {outcome['error']}")
    outcome["already_standing"] = already
    outcome["recorded"] = sorted(uid for uid, _ in todo)
    return outcome


def notify_downloaders(releases: dict[str, int]) -> None:
    """Tell earlier downloaders to replace their copies."""
    try:
        downloads.notify_downloaders(releases)
    except Exception:  # noqa: BLE001 - the release is published and recorded; a retry would not re-notify
        log.exception("notifying downloaders of %s failed", releases)
    finally:
        db.session.remove()


def on_run_failure(job, connection, exc_type, exc_value, traceback) -> None:
    """RQ failure callback: after the last retry, mark the job's run failed, with the error.

    Also called for a job whose worker died (AbandonedJobError). Does nothing while
    retries are left, when the job never took a run, or when another worker holds the
    lock (it is resuming the run).
    """
    if job.should_retry:
        return
    run_id = (job.meta or {}).get("run_id")
    if not run_id:
        return  # nothing taken: the corrections are still queued and the sweep re-enqueues them
    settings = ensure_bootstrapped()
    try:
        with locks.held(connection, LOCK_NAME, settings.lock_seconds, wait=1, floor=corrections.fence_floor()):
            corrections.fail(run_id, f"{getattr(exc_type, '__name__', 'Error')}: {exc_value}")
    except locks.LockBusy:
        log.info("run %s is being resumed by another worker; not marking it failed", run_id)
    finally:
        db.session.remove()


def deliver_mail() -> dict:
    """The mail job: deliver every due outbox message exactly once (the claim makes concurrent workers safe).

    Then ask for a delivery when the next held (or retried) message falls due.
    """
    ensure_bootstrapped()
    try:
        delivered = notify.deliver_pending()
        later = notify.next_due()
    finally:
        db.session.remove()
    if later is not None and later > utcnow():
        dispatch.mail(later)
    return {"delivered": delivered, "next_due": iso(later)}


def sweep() -> dict:
    """Re-enqueue corrections whose job is missing or whose run died; expire stale claims; send mail.

    Runs from every worker at start and every APPEALS_SWEEP_SECONDS, so an approval is
    never lost even if Redis loses everything.
    """
    ensure_bootstrapped()
    summary: dict = {"enqueued": 0, "expired": None, "mail": 0}
    try:
        summary["expired"] = review.expire_stale()
        connection = queues.connect()
        # Database first, then the lock: a correction seen `running` whose lock is free
        # afterwards belongs to a run that has ended, or died.
        pending = corrections.pending()
        run_live = locks.is_held(connection, LOCK_NAME)
        queued = [cid for cid, status, _ in pending if status == "queued"]
        stranded = [] if run_live else [cid for cid, status, _ in pending if status == "running"]
        summary["enqueued"] = queues.ensure_jobs(queued + stranded, connection, replace_started=stranded)
        summary["mail"] = notify.deliver_pending()
    finally:
        db.session.remove()
    if summary["enqueued"]:
        log.info("sweep enqueued %d correction job(s)", summary["enqueued"])
    return summary
