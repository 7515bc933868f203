"""Corrections of published data: queued at confirmation, taken by coalesced runs, finished or failed.

The database is the record of what must happen; Redis only carries the work. Every
function that changes rows owns its transaction except `queue_correction`, which
joins the confirmation's transaction so an approval and its correction commit together.
"""

from __future__ import annotations

import hashlib
import logging

from sqlalchemy import func, select

from appeals import db
from appeals.db import utcnow
from appeals.models import REMEDIES, Account, Appeal, Correction, CorrectionRun, Staff, StandingDecision
from appeals.services import appeals as appeal_states
from appeals.services import audit, policy
from appeals.services import dispatch as dispatcher
from appeals.services.audit import Actor
from appeals.services.errors import Conflict, Invalid, NotFound

log = logging.getLogger("appeals.corrections")

# The worker acts as this system actor on every timeline and audit entry it writes.
WORKER = Actor.system("correction worker")


def queue_correction(appeal: Appeal, actor: Actor) -> Correction:
    """Add the correction a confirmed approval asks for to the caller's transaction (no commit).

    The caller (the confirmation) has authorized the action and moves the appeal to
    `correction_queued`; call `dispatch()` after its commit.
    """
    if appeal.decision_remedy not in REMEDIES:
        raise Invalid("An approval must choose a remedy (remove or rehash) before it is confirmed.",
                      fields={"remedy": "Choose remove or rehash."})
    existing = db.session.scalar(select(Correction).where(Correction.appeal_id == appeal.id))
    if existing is not None:
        raise Conflict("This appeal already has a correction.", code="correction_exists")
    correction = Correction(appeal_id=appeal.id, user_id=appeal.account.user_id,
                            remedy=appeal.decision_remedy, status="queued", attempts=0)
    db.session.add(correction)
    db.session.flush()
    audit.record(actor, "correction.queue", "correction", correction.id, None,
                 {"appeal_id": appeal.id, "remedy": correction.remedy, "status": "queued"})
    return correction


def dispatch() -> None:
    """After commit: ask for a job for every queued correction; never raises.

    When Redis is unreachable the corrections stay queued in the database and the
    worker's periodic sweep enqueues them later, so nothing is lost.
    """
    ids = db.session.scalars(select(Correction.id).where(Correction.status == "queued")).all()
    dispatcher.corrections(ids)


def retry(correction_id: int, actor: Actor) -> Correction:
    """Admin: send a failed correction back to the queue (appeal correction_failed -> correction_queued)."""
    _authorize_retry(actor)
    correction = db.session.get(Correction, correction_id)
    if correction is None:
        raise NotFound("No such correction.")
    if correction.status != "failed":
        raise Conflict(f"Only a failed correction can be retried; this one is {correction.status}.",
                       code="not_failed")
    before = {"status": correction.status, "error": correction.error, "run_id": correction.run_id}
    correction.status = "queued"
    correction.run_id = None
    correction.error = None
    correction.finished_at = None
    appeal = correction.appeal
    if appeal.status == "correction_failed":
        appeal_states.transition(appeal, "correction_queued", actor, "correction.retry",
                                 public_note="The correction is being tried again.")
    audit.record(actor, "correction.retry", "correction", correction.id, before,
                 {"status": "queued", "appeal_id": correction.appeal_id})
    db.session.commit()
    dispatcher.mail()
    dispatch()
    return correction


def _authorize_retry(actor: Actor) -> None:
    # The operator is someone with a shell on the server (the CLI); staff go through the policy.
    if actor.kind == "operator":
        return
    staff = db.session.get(Staff, actor.id) if actor.kind == "staff" and actor.id is not None else None
    policy.authorize(staff, "correction.retry")


# --- the worker's side: used by workers.jobs, one transaction each -----------------------------


def batch_id_for(correction_ids) -> str:
    """The engine batch id of a run: the same set of corrections always gives the same id."""
    digest = hashlib.sha256(",".join(str(i) for i in sorted(set(correction_ids))).encode()).hexdigest()
    return f"run-{digest[:16]}"


def batch_items(corrections) -> list[list[str]]:
    """The engine items of a set of corrections: one per account; `remove` wins over `rehash`."""
    remedies: dict[str, str] = {}
    for c in corrections:
        if remedies.get(c.user_id) != "remove":
            remedies[c.user_id] = c.remedy
    return [[user_id, remedy] for user_id, remedy in sorted(remedies.items())]


def interrupted_runs() -> list[str]:
    """Ids of runs left `running` by a worker that died (call only while holding the dataset lock)."""
    ids = db.session.scalars(
        select(CorrectionRun.id).where(CorrectionRun.status == "running").order_by(CorrectionRun.created_at)
    ).all()
    db.session.rollback()
    return list(ids)


def take_queued(job_id: str | None, fence: int) -> CorrectionRun | None:
    """Take every queued correction into one new run (appeals -> correcting); None when none is queued.

    Call only while holding the dataset lock: that is what makes "every queued one" safe.
    """
    session = db.session
    corrections = session.scalars(
        select(Correction).where(Correction.status == "queued").order_by(Correction.id)
    ).all()
    if not corrections:
        session.rollback()
        return None
    run_id = batch_id_for(c.id for c in corrections)
    run = session.get(CorrectionRun, run_id)
    if run is None:
        run = CorrectionRun(id=run_id)
        session.add(run)
    run.status = "running"
    run.job_id = job_id
    run.fence = fence
    run.items = batch_items(corrections)
    run.error = None
    run.progress = 0.0
    run.started_at = utcnow()
    run.finished_at = None
    session.flush()
    for c in corrections:
        c.status = "running"
        c.run_id = run_id
        c.attempts += 1
        if appeal_states.can_move(c.appeal.status, "correcting"):
            appeal_states.transition(c.appeal, "correcting", WORKER, "correction.start",
                                     data={"run_id": run_id})
    session.commit()
    dispatcher.mail()
    return run


def resume(run_id: str, job_id: str | None, fence: int) -> CorrectionRun:
    """Adopt a run whose worker died, under this worker's job and fence (its batch id is kept)."""
    run = db.session.get(CorrectionRun, run_id)
    run.job_id = job_id
    run.fence = fence
    run.started_at = utcnow()
    for c in _corrections_of(run_id):
        c.attempts += 1
    db.session.commit()
    log.warning("resuming interrupted correction run %s", run_id)
    return run


def start_operator_run(batch_id: str, items: list[list[str]], fence: int, actor: Actor, reason: str) -> CorrectionRun:
    """Record an operator's batch (from the command line) as a run, audited with its reason."""
    run = db.session.get(CorrectionRun, batch_id)
    if run is None:
        run = CorrectionRun(id=batch_id)
        db.session.add(run)
    run.status = "running"
    run.items = [list(i) for i in items]
    run.fence = fence
    run.job_id = None
    run.error = None
    run.started_at = utcnow()
    run.finished_at = None
    run.operator = actor.label[:255]
    run.reason = reason
    audit.record(actor, "correction_run.operator", "correction_run", batch_id, None,
                 {"items": run.items, "reason": reason})
    db.session.commit()
    return run


def directory_names(user_ids) -> dict[str, str]:
    """user id -> screen name, from the account directory, for the accounts of a batch.

    The engine uses them to find @handles of accounts the data only refers to.
    """
    rows = db.session.execute(
        select(Account.user_id, Account.screen_name).where(Account.user_id.in_(list(user_ids)))
    ).all()
    return {user_id: screen_name for user_id, screen_name in rows}


def fence_floor() -> int:
    """The highest fencing token any run has used: new tokens must exceed it even if Redis lost its data."""
    value = db.session.scalar(select(func.max(CorrectionRun.fence)))
    db.session.rollback()
    return int(value or 0)


def set_progress(run_id: str, progress: float) -> None:
    """Record how far a run has got (0..1), for the reviewers' dashboard."""
    run = db.session.get(CorrectionRun, run_id)
    if run is not None and run.status == "running":
        run.progress = max(0.0, min(1.0, float(progress)))
        db.session.commit()


def finish(run_id: str, result, decisions: list[dict] | None = None) -> dict[str, int] | None:
    """One transaction: the run and its corrections done with their releases, appeals corrected, audited,
    and the run's `decisions` ({user_id, remedy, epoch, screen_names}) recorded in the ledger.

    `result` is the engine's CorrectionResult. Returns the releases, or None when another
    worker had already recorded this run; mail goes out after commit.
    """
    session = db.session
    run = session.get(CorrectionRun, run_id)
    releases = {name: int(version) for name, version in (result.releases or {}).items()}
    if run.status != "running":
        # Two workers raced on one batch (e.g. Redis lost the lock): the first recorded it.
        session.rollback()
        return None
    run.status = "done"
    run.releases = releases
    run.progress = 1.0
    run.error = None
    run.bytes_written = int(result.bytes_written or 0)
    run.files_rewritten = int(result.files_rewritten or 0)
    if not result.already_applied:
        # A re-run that found its batch already published keeps the first run's timing.
        run.duration_s = float(result.duration_s or 0.0)
    run.finished_at = utcnow()
    note = _release_note(releases)
    _record_decisions(run, decisions or [], _corrections_of(run_id))
    for c in _corrections_of(run_id):
        c.status = "done"
        c.releases = releases
        c.error = None
        c.finished_at = run.finished_at
        appeal = c.appeal
        if appeal_states.can_move(appeal.status, "corrected"):
            appeal_states.transition(appeal, "corrected", WORKER, "correction.done", public_note=note,
                                     data={"releases": releases, "remedy": c.remedy, "run_id": run_id})
    audit.record(WORKER, "correction_run.done", "correction_run", run_id, None,
                 {"releases": releases, "items": len(run.items or []), "already_applied": bool(result.already_applied),
                  "bytes_written": run.bytes_written, "files_rewritten": run.files_rewritten})
    session.commit()
    dispatcher.mail()
    return releases


def fail(run_id: str, error: str) -> None:
    """One transaction: the run and its corrections failed with `error`; appeals correction_failed."""
    session = db.session
    session.rollback()
    run = session.get(CorrectionRun, run_id)
    if run is None or run.status != "running":
        return
    error = (error or "unknown error")[:4000]
    run.status = "failed"
    run.error = error
    run.finished_at = utcnow()
    for c in _corrections_of(run_id):
        c.status = "failed"
        c.error = error
        c.finished_at = run.finished_at
        if appeal_states.can_move(c.appeal.status, "correction_failed"):
            # The owner reads a plain note; the technical error stays with the staff.
            appeal_states.transition(c.appeal, "correction_failed", WORKER, "correction.failed",
                                     data={"run_id": run_id})
    audit.record(WORKER, "correction_run.failed", "correction_run", run_id, None, {"error": error})
    session.commit()
    dispatcher.mail()
    log.error("correction run %s failed: %s", run_id, error)


def pending() -> list[tuple[int, str, str | None]]:
    """(correction id, status, run id) of every correction not yet done or failed, for the sweep."""
    rows = db.session.execute(
        select(Correction.id, Correction.status, Correction.run_id)
        .where(Correction.status.in_(("queued", "running"))).order_by(Correction.id)
    ).all()
    db.session.rollback()
    return [tuple(row) for row in rows]


def _corrections_of(run_id: str) -> list[Correction]:
    return db.session.scalars(
        select(Correction).where(Correction.run_id == run_id, Correction.status == "running").order_by(Correction.id)
    ).all()


def _release_note(releases: dict[str, int]) -> str:
    if not releases:
        return "The published datasets already no longer showed this account; no new release was needed."
    listed = ", ".join(f"{name} version {version}" for name, version in sorted(releases.items()))
    return f"Corrected releases published: {listed}."


# --- the ledger of standing decisions (issue 11) ------------------------------------------------


def _record_decisions(run: CorrectionRun, decisions: list[dict], corrections: list[Correction]) -> None:
    """Add a finished run's decisions to the ledger in the caller's transaction; each supersedes the
    account's standing one. A pipeline decision names its appeal and confirming senior, an operator's
    the operator and reason."""
    by_user: dict[str, Correction] = {}
    for c in corrections:
        by_user.setdefault(c.user_id, c)
    for d in decisions:
        previous = db.session.scalars(select(StandingDecision).where(
            StandingDecision.user_id == d["user_id"], StandingDecision.revoked_at.is_(None),
            StandingDecision.superseded_by_id.is_(None))).all()
        c = by_user.get(d["user_id"])
        entry = StandingDecision(
            user_id=d["user_id"], remedy=d["remedy"], epoch=int(d["epoch"]),
            screen_names=sorted({s.lower() for s in d.get("screen_names") or []}), run_id=run.id,
            appeal_id=c.appeal_id if c else None, confirmed_by_id=c.appeal.confirmed_by_id if c else None,
            operator=None if c else run.operator, reason=None if c else run.reason, decided_at=utcnow())
        db.session.add(entry)
        db.session.flush()
        for p in previous:
            p.superseded_by_id = entry.id
        audit.record(WORKER, "decision.record", "standing_decision", entry.id,
                     {"superseded": [p.id for p in previous]} if previous else None,
                     {"user_id": entry.user_id, "remedy": entry.remedy, "epoch": entry.epoch, "run_id": run.id,
                      "appeal_id": entry.appeal_id})


def _standing_query():
    return select(StandingDecision).where(StandingDecision.revoked_at.is_(None),
                                          StandingDecision.superseded_by_id.is_(None))


def standing_decisions() -> list[dict]:
    """Every standing decision as plain data for the engine: {user_id, remedy, epoch, screen_names}."""
    rows = db.session.scalars(_standing_query().order_by(StandingDecision.user_id)).all()
    out = [{"user_id": d.user_id, "remedy": d.remedy, "epoch": d.epoch, "screen_names": list(d.screen_names or [])}
           for d in rows]
    db.session.rollback()
    return out


def standing_for(user_ids) -> dict[str, StandingDecision]:
    """user id -> its standing decision, for those of `user_ids` that have one."""
    ids = list(user_ids)
    rows = db.session.scalars(_standing_query().where(StandingDecision.user_id.in_(ids))).all() if ids else []
    return {d.user_id: d for d in rows}


def decision_history(user_ids) -> dict[str, list[int]]:
    """user id -> ids of every decision ever recorded for it (standing or not), ascending."""
    ids = list(user_ids)
    out: dict[str, list[int]] = {u: [] for u in ids}
    if ids:
        for uid, did in db.session.execute(select(StandingDecision.user_id, StandingDecision.id)
                                           .where(StandingDecision.user_id.in_(ids)).order_by(StandingDecision.id)):
            out[uid].append(did)
    return out


def _authorize_ledger(actor: Actor, action: str) -> None:
    # The operator has a shell on the server (the CLI); staff go through the policy.
    if actor.kind == "operator":
        return
    staff = db.session.get(Staff, actor.id) if actor.kind == "staff" and actor.id is not None else None
    policy.authorize(staff, action)


def ledger(actor: Actor, include_ended: bool = True) -> list[dict]:
    """The ledger for an admin or the operator: every decision, newest first, with who decided it."""
    _authorize_ledger(actor, "ledger.view")
    query = select(StandingDecision).order_by(StandingDecision.id.desc())
    if not include_ended:
        query = query.where(StandingDecision.revoked_at.is_(None), StandingDecision.superseded_by_id.is_(None))
    out = []
    for d in db.session.scalars(query):
        senior = db.session.get(Staff, d.confirmed_by_id) if d.confirmed_by_id else None
        out.append({
            "id": d.id, "user_id": d.user_id, "remedy": d.remedy, "epoch": d.epoch,
            "status": "standing" if d.standing else ("revoked" if d.revoked_at else "superseded"),
            "decided_at": d.decided_at.isoformat(timespec="seconds") + "Z",
            "decided_by": ({"appeal_id": d.appeal_id, "confirmed_by": senior.email if senior else None}
                           if d.appeal_id else {"operator": d.operator, "reason": d.reason}),
            "run_id": d.run_id, "superseded_by": d.superseded_by_id,
            "revoked_at": d.revoked_at.isoformat(timespec="seconds") + "Z" if d.revoked_at else None,
            "revoked_by": d.revoked_by, "revoke_reason": d.revoke_reason,
        })
    db.session.rollback()
    return out


def revoke_decision(user_id: str, reason: str, actor: Actor) -> StandingDecision:
    """End the account's standing decision (admin or operator), audited; only future imports change."""
    _authorize_ledger(actor, "decision.revoke")
    reason = (reason or "").strip()
    if not reason:
        raise Invalid("Say why the decision is revoked.", fields={"reason": "A reason is required."})
    decision = standing_for([str(user_id).strip()]).get(str(user_id).strip())
    if decision is None:
        raise NotFound(f"No standing decision for account {user_id}.")
    decision.revoked_at = utcnow()
    decision.revoked_by = actor.label[:255]
    decision.revoke_reason = reason
    audit.record(actor, "decision.revoke", "standing_decision", decision.id,
                 {"user_id": decision.user_id, "remedy": decision.remedy, "epoch": decision.epoch},
                 {"revoked_at": decision.revoked_at.isoformat(), "reason": reason})
    db.session.commit()
    return decision


def own_standing_decision(principal) -> dict | None:
    """The owner's own standing decision ({remedy, decided_at}) for their footprint page, or None."""
    if not isinstance(principal, Account):
        return None
    d = standing_for([principal.user_id]).get(principal.user_id)
    return None if d is None else {"remedy": d.remedy, "decided_at": d.decided_at}


def ledger_screen_names(user_ids) -> dict[str, str]:
    """user id -> a screen name the ledger recorded for it (latest decision first), for accounts whose
    name neither the data nor the account directory still shows (a correction replaced it)."""
    ids = list(user_ids)
    out: dict[str, str] = {}
    if ids:
        rows = db.session.scalars(select(StandingDecision).where(StandingDecision.user_id.in_(ids))
                                  .order_by(StandingDecision.id.desc())).all()
        for d in rows:
            if d.screen_names and d.user_id not in out:
                out[d.user_id] = sorted(d.screen_names)[0]
    return out
