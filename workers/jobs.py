"""RQ jobs of the correction pipeline: the coalescing run and the sweep. No Flask here.

A run holds the dataset lock for its whole life, so whatever it finds `queued` (or
left `running` by a dead worker) is its to take. Its engine batch id is derived
from the corrections it took, so a re-run after a crash publishes nothing twice.
"""

from __future__ import annotations

import json
import logging
import time

import redis
from rq import get_current_job

from appeals import db, runtime
from appeals.db import utcnow
from appeals.requests import iso
from appeals.services import corrections, dispatch, notify
from config import Settings
from workers import handoff, locks, queues
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
        result = apply_batch(engine, run_id, [tuple(item) for item in items], lock, screen_names, reason or run_id)
    except (*PERMANENT_ERRORS, FileJobFailed) as exc:
        corrections.fail(run_id, f"{type(exc).__name__}: {exc}")
        return {"run": run_id, "status": "failed", "error": str(exc)}
    faults.checkpoint("before_commit")
    decisions = [{"user_id": uid, "remedy": remedy, "epoch": engine.standing_epoch(uid),
                  "screen_names": sorted(known[uid])} for uid, remedy in items]
    releases = corrections.finish(run_id, result, decisions)
    if releases:
        notify_downloaders(releases)
        after_publication(releases, [uid for uid, _ in items])
    return {"run": run_id, "status": "done", "releases": releases or {},
            "already_applied": bool(result.already_applied), "noop": [list(n) for n in result.noop or []]}


# --- issue 17: a correction fanned out per file ------------------------------------------------

FILE_JOB = "workers.jobs.rewrite_file"
COMMIT_JOB = "workers.jobs.commit_files"
FAN_OUT_POLL_SECONDS = 0.5


class FileJobFailed(Exception):
    """A file or commit job of a fanned-out run failed for good (its retries spent)."""


def apply_batch(engine, run_id: str, items, lock: locks.Lock, screen_names: dict, reason: str):
    """Apply a run's batch: fanned out as one job per file when the store is shared and another
    worker takes the `files` queue; otherwise (the local store) with the engine's threads here."""
    if engine.store.remote and _file_workers(lock.conn) > 0:
        return _fan_out(engine, run_id, items, lock, screen_names)
    return engine.apply(run_id, items, reason=reason, fence=lock.token, screen_names=screen_names)


def _file_workers(connection) -> int:
    """Workers other than this one that listen on the files queue."""
    from rq import Worker

    me = get_current_job()
    mine = me.worker_name if me is not None else None
    return sum(1 for w in Worker.all(queue=queues.files_queue(connection)) if w.name != mine)


def _fan_out(engine, run_id: str, items, lock: locks.Lock, screen_names: dict):
    """Plan, enqueue one job per file and a commit job depending on all of them, and wait for the
    commit while holding the lock; the commit job publishes in one conditional write."""
    from workers.engine.model import CorrectionResult

    plan = engine.plan_batch(run_id, items, lock.token, screen_names=screen_names)
    if isinstance(plan, CorrectionResult):
        return plan  # published before (a resumed run): exactly once
    file_jobs, commit = enqueue_fan_out(engine, plan, queues.connect())
    log.info("run %s fanned out as %d file jobs and %s", run_id, len(file_jobs), commit.id)
    try:
        return wait_for_commit(file_jobs, commit, lock)
    except FileJobFailed:
        # A commit job killed after its conditional write, with no retries left, is failed by RQ's cleanup;
        # HEAD says whether it published, and a published batch is recorded as such, not as a failure.
        published = engine.batch_result(plan.batch_id)
        if published is not None:
            return published
        raise


def enqueue_fan_out(engine, plan, connection):
    """Save the plan in the store and enqueue its file jobs and the commit job that depends on them all;
    return (file jobs, commit job)."""
    plan_id = engine.save_plan(plan)
    settings = runtime.settings()
    timeout = settings.file_job_timeout
    q = queues.files_queue(connection)
    tag = f"{plan.batch_id}-{plan_id[:12]}"
    common = dict(retry=queues.retry_policy(settings),
                  job_timeout=timeout, result_ttl=queues.RESULT_TTL, failure_ttl=queues.FAILURE_TTL)
    file_jobs = [q.enqueue(FILE_JOB, plan_id, i, job_id=f"file-{tag}-{i}",
                           description=f"rewrite {task.label} for run {plan.batch_id}", **common)
                 for i, task in enumerate(plan.tasks)]
    commit = q.enqueue(COMMIT_JOB, plan_id, [j.id for j in file_jobs], job_id=f"commit-{tag}",
                       depends_on=file_jobs or None, description=f"commit run {plan.batch_id}", **common)
    return file_jobs, commit


def wait_for_commit(file_jobs, commit, lock: locks.Lock | None = None, poll: float = FAN_OUT_POLL_SECONDS):
    """Wait for a fanned-out run's commit job; return its CorrectionResult. Raises FileJobFailed when a
    file or commit job failed for good (the commit is cancelled: nothing is published), VerificationFailed
    for a permanent problem the jobs reported."""
    from rq.job import JobStatus

    from workers.engine.model import CorrectionResult

    while True:
        # RQ's abandoned-job cleanup, run here often rather than every ten minutes: a file job whose
        # worker died (kill -9) is retried once its short heartbeat lapses, or failed when its retries
        # are spent. The sweep does the same, for when this coordinator is gone too.
        queues.recover_files(commit.connection)
        if commit.get_status(refresh=True) == JobStatus.FINISHED:
            done = commit.return_value()
            if done.get("failed"):
                raise VerificationFailed(done["failed"])
            d = dict(done["result"])
            d["noop"] = [tuple(x) for x in d["noop"]]
            return CorrectionResult(**d)
        for j in [*file_jobs, commit]:
            # FAILED is final: a job with retries left is queued or scheduled again instead.
            if j.get_status(refresh=True) in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED):
                commit.cancel()
                raise FileJobFailed(f"{j.description}: {_last_error(j)}")
        if lock is not None and lock.lost:
            raise locks.LockLost(lock.lost)
        time.sleep(poll)


def _last_error(job) -> str:
    result = job.latest_result()
    text = (getattr(result, "exc_string", None) or "").strip().splitlines()
    return text[-1] if text else "failed"


_plans: dict = {}  # plan id -> (plan, (corrector, forbidden)): a worker usually takes several files of one plan


def _plan_and_rules(engine, plan_id: str):
    if plan_id not in _plans:
        plan = engine.load_plan(plan_id)
        _plans.clear()  # one plan at a time: plans are immutable, so a stale entry is only memory
        _plans[plan_id] = plan, (plan.corrector(), plan.forbidden())
    return _plans[plan_id]


def rewrite_file(plan_id: str, index: int) -> dict:
    """File job: rewrite one file of a fanned-out run from the store, verify it, and upload it under its
    content address; returns its outcome document (or the reason it cannot be done, for the commit job)."""
    ensure_bootstrapped()
    engine = runtime.engine()
    plan, rules = _plan_and_rules(engine, plan_id)
    faults.checkpoint("file_job")
    try:
        outcome = engine.rewrite_task(plan, index, rules)
    except PERMANENT_ERRORS as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    job = get_current_job()
    if job is not None:  # who did which file, for the cluster test and for people looking into a run
        job.meta["worker"] = job.worker_name
        job.save_meta()
    return {"outcome": outcome.to_doc()}


def commit_files(plan_id: str, file_job_ids: list[str]) -> dict:
    """Commit job: runs only when every file job succeeded (RQ dependencies); verifies the set and
    commits the new releases in one conditional write. A permanent problem publishes nothing."""
    import dataclasses

    from rq.job import Job

    from workers.engine.batch import FileOutcome

    ensure_bootstrapped()
    engine = runtime.engine()
    plan = engine.load_plan(plan_id)
    connection = queues.connect()
    docs = [Job.fetch(jid, connection=connection).return_value() for jid in file_job_ids]
    if any(d is None for d in docs):
        errors = ["a file job left no result"]
    else:
        errors = [d["error"] for d in docs if "error" in d]
    if errors:
        return {"failed": "; ".join(errors[:5])}
    try:
        result = engine.commit_batch(plan, [FileOutcome.from_doc(d["outcome"]) for d in docs])
    except PERMANENT_ERRORS as exc:
        return {"failed": f"{type(exc).__name__}: {exc}"}
    return {"result": dataclasses.asdict(result)}


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


def operator_job(items: list[list[str]], reason: str, actor: list, request_id: str | None = None) -> dict:
    """The command line's correction handed to a running worker: `operator_apply`, its errors as data.

    Its arguments are the wire format of `appeals corrections apply`: [[user id, remedy], ...], the
    reason, and the actor as [kind, id, label]; `request_id` names the hand-off request (workers.handoff)
    whose reply this job writes. Returns {"outcome": ...} as `operator_apply` returns it,
    or {"error": one line}, which the command prints exactly as it does in-process (an unmigrated
    database, a busy lock, a failed batch); an unexpected error comes back as one line too (its
    traceback goes to the worker's log), so the job fails only when its worker dies: RQ's abandoned-job
    cleanup then runs it again (its one retry), which is safe because the batch is idempotent by
    decision (see `operator_apply`).
    """
    value = _operator_value(items, reason, actor)
    if request_id is not None:
        job = get_current_job()
        try:
            handoff.send_reply(job.connection if job else queues.connect(), request_id, value)
        except redis.RedisError:
            # The command then reads the job's own result from RQ (appeals/commands/corrections.py).
            log.warning("could not hand the reply of request %s to the waiting command", request_id, exc_info=True)
    return value


def _operator_value(items: list[list[str]], reason: str, actor: list) -> dict:
    from appeals.commands._common import database_problem
    from appeals.services.audit import Actor

    settings = ensure_bootstrapped()
    problem = database_problem(settings.database_url)
    if problem:
        return {"error": problem}
    try:
        return {"outcome": operator_apply([list(i) for i in items], reason, Actor(*actor))}
    except OperatorError as exc:
        return {"error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - the command prints it; RQ's retry is kept for a dead worker
        log.exception("operator batch %s failed", items)
        return {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")}


def notify_downloaders(releases: dict[str, int]) -> None:
    """Tell earlier downloaders to replace their copies."""
    # Imported here, and not through the `downloads` facade (QR codes, download links): a run that
    # publishes nothing never needs it, and the operator's command pays for every import.
    from appeals.services.download_notices import notify_downloaders as notify_earlier

    try:
        notify_earlier(releases)
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
    """Re-enqueue corrections whose job is missing or whose run died, and file or commit jobs whose worker
    died; expire stale claims; send mail.

    Runs from every worker at start and every APPEALS_SWEEP_SECONDS, so an approval is
    never lost even if Redis loses everything.
    """
    from appeals.services import review  # here: the operator's commands never sweep

    ensure_bootstrapped()
    summary: dict = {"enqueued": 0, "expired": None, "mail": 0, "files": 0, "handoff": 0}
    try:
        connection = queues.connect()
        # File and commit jobs of dead workers first: they need neither the database nor the lock.
        summary["files"] = queues.recover_files(connection)
        # Operators' requests a dead worker had taken but not yet made a job of go back to the others.
        summary["handoff"] = handoff.recover(connection, lambda name: queues.worker_alive(connection, name))
        summary["expired"] = review.expire_stale()
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


# --- issue 15: reviewers' activity summaries, made ahead of their first view ---------------------


def warm_activity(appeal_id: int) -> dict:
    """Job: make and keep an appeal's activity summary over the current releases (with its chart's figures
    and sample rows), so the reviewer's first view reads it; cheap when it is kept already."""
    from appeals.services import activity

    ensure_bootstrapped()
    try:
        return activity.warm(appeal_id)
    finally:
        db.session.remove()


def warm_published(releases: dict[str, int]) -> dict:
    """Job: after a publication, a warm-up job for each open appeal whose account the new releases hold."""
    from appeals.services import activity
    from workers.dispatch import send_warm

    ensure_bootstrapped()
    try:
        appeal_ids = activity.holding(releases)
        enqueued = send_warm(appeal_ids)
    finally:
        db.session.remove()
    return {"appeals": len(appeal_ids), "enqueued": enqueued}


def after_publication(releases: dict[str, int], corrected=()) -> None:
    """After new releases were published: drop the kept summaries of the `corrected` accounts (their old
    rows must not linger) and ask for the open appeals' summaries over the new releases. Never raises."""
    from appeals.services import activity

    for user_id in corrected:
        try:
            activity.forget(user_id)
        except OSError:
            log.warning("could not remove the kept activity summaries of a corrected account", exc_info=True)
    dispatch.published(releases)
