"""The reviewer's actions on an appeal: claim, release, decide, confirm, send back, notes, messages, expiry.

Every function authorizes first, checks the caller's version of the appeal where
one is given, changes rows, routes status changes through `appeals.transition`,
commits, then delivers mail. Claims are taken with one conditional UPDATE, so two
reviewers racing for an appeal get exactly one winner on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from sqlalchemy import case, or_, select, update
from sqlalchemy.orm.exc import StaleDataError

from appeals import db, runtime
from appeals import status as table
from appeals.db import utcnow
from appeals.models import REMEDIES, Appeal, InternalNote, Message, Staff
from appeals.requests import iso
from appeals.requests import text as clean_text
from appeals.services import activity, corrections, dispatch, notify, policy, reference
from appeals.services.appeals import check_version, clear_claim, record_action, snapshot, timeline, transition
from appeals.services import staff as staff_service
from appeals.services.audit import Actor
from appeals.services.errors import Conflict, Invalid, NotFound
from appeals.services.footprint import entries_for_user_id
from appeals.services.transactions import atomic
from workers.engine.errors import EngineError

log = logging.getLogger("appeals.review")

DECISIONS = ("approve", "deny", "request_info", "escalate")
EXPIRY_BATCH = 200


# --- reading ---------------------------------------------------------------------------------


def appeal_page(principal, appeal_id: int) -> dict:
    """Everything a reviewer needs on one appeal: evidence, footprint, samples, timeline, notes, plan."""
    appeal = _authorized(principal, "appeal.view", appeal_id)
    evidence = _evidence(appeal)
    notes = db.session.execute(
        select(InternalNote, Staff.email).join(Staff, Staff.id == InternalNote.staff_id)
        .where(InternalNote.appeal_id == appeal.id).order_by(InternalNote.id)
    ).all()
    events = timeline(appeal, for_owner=False)
    staff_ids = {e.get("actor_id") for e in events if e.get("actor") == "staff"}
    staff_ids |= {e.get("author_staff_id") for e in events if e.get("author_staff_id")}
    staff_ids |= {appeal.approved_by_id, appeal.confirmed_by_id}
    staff_ids.discard(None)
    names = dict(db.session.execute(select(Staff.id, Staff.email).where(Staff.id.in_(staff_ids))).all()) \
        if staff_ids else {}
    return {
        "appeal": appeal,
        "claim_live": policy.claim_is_live(appeal),
        "holds_claim": policy.holds_claim(principal, appeal),
        "can": {action: policy.can(principal, "appeal." + action, appeal)
                for action in ("claim", "release", "decide", "message", "note", "confirm", "send_back")},
        "evidence": evidence,
        "timeline": events,
        "notes": [{"at": n.created_at, "by": email, "body": n.body} for n, email in notes],
        "staff_names": names,
        "reason_codes": reference.reason_codes(),
        "templates": reference.templates(),
        "owner_language": notify.owner_language(appeal),  # issue 16: reviewers see it; templates follow it
    }


def _evidence(appeal: Appeal) -> dict:
    """The published footprint, sample rows per dataset and (for an approval) the correction plan."""
    user_id = appeal.account.user_id
    result = {"footprint": [], "samples": {}, "plan": None, "error": None}
    try:
        engine = runtime.engine()
        result["footprint"] = entries_for_user_id(user_id)
        for entry in result["footprint"]:
            result["samples"][entry["dataset"]] = activity.samples(user_id, entry["dataset"], limit=activity.SAMPLE_ROWS)
        if appeal.status == "approved" and appeal.decision_remedy in REMEDIES:
            plan = engine.plan(items=[(user_id, appeal.decision_remedy)])
            result["plan"] = {"datasets": plan.datasets, "noop": plan.noop}
    except (EngineError, OSError) as exc:
        # The decision must still be possible to discuss; the page says the evidence is unavailable.
        log.warning("evidence for appeal %s unavailable: %s", appeal.id, exc)
        result["error"] = f"The published data could not be read: {exc}"
    return result


# --- claims ----------------------------------------------------------------------------------


@atomic
def claim(principal, appeal_id: int, actor: Actor, expected_version: int | None = None) -> Appeal:
    """Take the appeal; 409 when another reviewer holds a live claim. A filed appeal goes in_review."""
    appeal = _authorized(principal, "appeal.claim", appeal_id)
    check_version(appeal, expected_version)
    _take(principal, appeal, actor)
    db.session.commit()
    dispatch.mail()
    return appeal


@atomic
def claim_next(principal, actor: Actor) -> Appeal | None:
    """Claim the oldest unclaimed appeal waiting for a reviewer (seniors also take escalations).

    Returns None only when nothing is claimable. On PostgreSQL candidates are locked with
    FOR UPDATE SKIP LOCKED, so racing reviewers each get a different row at once; SQLite
    has no row locks but serializes writers, so there a lost race (the conditional UPDATE
    matching nothing) simply looks again: every round someone wins, so the loop ends.
    """
    policy.authorize(principal, "appeal.claim")
    # An appeal waiting on its owner is claimed when they reply, not before.
    statuses = [s for s in _claimable_by(principal) if s not in table.WAITING_FOR_OWNER]
    skip_locked = db.session.get_bind().dialect.name == "postgresql"
    while True:
        query = (
            select(Appeal.id)
            .where(Appeal.status.in_(statuses),
                   or_(Appeal.assigned_to_id.is_(None), Appeal.claim_touched_at < _cutoff()),
                   # issue 13: an appeal once escalated stays with the seniors
                   or_(Appeal.senior_only.is_(False), principal.has_role("senior")))
            .order_by(Appeal.created_at, Appeal.id)
            .limit(1 if skip_locked else 5)
        )
        candidates = db.session.scalars(query.with_for_update(skip_locked=True, of=Appeal)
                                        if skip_locked else query).all()
        if not candidates:
            # Every candidate may be locked by a claim in flight; one that rolls back is ours to take.
            in_flight = skip_locked and db.session.scalar(query.limit(1)) is not None
            db.session.rollback()
            if not in_flight:
                return None
            time.sleep(0.01)
            continue
        for appeal_id in candidates:
            appeal = db.session.get(Appeal, appeal_id)
            try:
                _take(principal, appeal, actor)
            except Conflict:
                db.session.rollback()  # another reviewer was faster; try the next one
                continue
            db.session.commit()
            dispatch.mail()
            return appeal


@atomic
def release(principal, appeal_id: int, actor: Actor, expected_version: int | None = None) -> Appeal:
    """Give the appeal back to the queue (its holder, or any senior); undecided reviews return to filed."""
    appeal = _authorized(principal, "appeal.release", appeal_id)
    check_version(appeal, expected_version)
    if appeal.assigned_to_id is None:
        raise Conflict("Nobody holds a claim on this appeal.", code="not_claimed")
    _give_back(appeal, actor, "appeal.release")
    db.session.commit()
    dispatch.mail()
    return appeal


def _take(staff: Staff, appeal: Appeal, actor: Actor) -> None:
    """The atomic claim: one conditional UPDATE; rowcount 0 means someone else holds it (no commit)."""
    statuses = _claimable_by(staff)
    if appeal.status not in statuses:
        raise Conflict(f"An appeal that is {appeal.status} cannot be claimed.", code="not_claimable")
    before = snapshot(appeal)
    now = utcnow()
    result = db.session.execute(
        update(Appeal)
        .where(
            Appeal.id == appeal.id,
            Appeal.status.in_(statuses),
            or_(Appeal.assigned_to_id.is_(None), Appeal.claim_touched_at < _cutoff(now),
                Appeal.assigned_to_id == staff.id),
        )
        .values(
            assigned_to_id=staff.id,
            claimed_at=case((Appeal.assigned_to_id == staff.id, Appeal.claimed_at), else_=now),
            claim_touched_at=now,
            version=Appeal.version + 1,
        )
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(appeal)
    if result.rowcount != 1:
        holder = appeal.assigned_to.email if appeal.assigned_to else "another reviewer"
        raise Conflict(f"{holder} holds this appeal; it cannot be claimed now.", code="claimed_by_other")
    if appeal.status == "filed":
        transition(appeal, "in_review", actor, "appeal.claim", before=before)
    else:
        record_action(appeal, actor, "appeal.claim", before)


def _claimable_by(staff: Staff) -> list[str]:
    # Statuses in which this member can hold an appeal; senior-only ones for seniors (see the policy).
    return [s for s in table.CLAIMABLE if s not in table.SENIOR_ONLY or staff.has_role("senior")]


def _give_back(appeal: Appeal, actor, action: str) -> None:
    """End the claim (released or expired): an undecided review returns to filed; audited as `action`."""
    before = snapshot(appeal)
    clear_claim(appeal)
    if appeal.status == "in_review" and appeal.decided_at is None:
        transition(appeal, "filed", actor, action, before=before)
    else:
        record_action(appeal, actor, action, before)


def _touch(appeal: Appeal, staff: Staff) -> None:
    # Any action by the holder keeps the claim alive for another idle period.
    if appeal.assigned_to_id == staff.id:
        appeal.claim_touched_at = utcnow()


def _cutoff(now: datetime | None = None) -> datetime:
    return (now or utcnow()) - timedelta(minutes=runtime.settings().claim_idle_minutes)


# --- decisions -------------------------------------------------------------------------------


@atomic
def decide(
    principal,
    appeal_id: int,
    actor: Actor,
    action: str,
    *,
    remedy: str | None = None,
    reason_code: str | None = None,
    statement: str = "",
    expected_version: int | None = None,
) -> Appeal:
    """Approve (with a remedy), deny (with a reason code), request information, or escalate."""
    if action not in DECISIONS:
        raise Invalid("Choose approve, deny, request_info or escalate.", fields={"action": "Unknown decision."})
    appeal = _authorized(principal, "appeal.decide", appeal_id)
    check_version(appeal, expected_version)
    statement = _text(statement, "statement", required=True)
    reference.require_filled(statement, "statement")
    before = snapshot(appeal)
    now = utcnow()

    if action == "approve":
        if remedy not in REMEDIES:
            raise Invalid("Choose the remedy: remove or rehash.", fields={"remedy": "Choose remove or rehash."})
        code = reference.usable_reason_code(reason_code, "approve")
        appeal.decision_remedy = remedy
        appeal.decision_reason_code = code.code if code else None
        appeal.decision_statement = statement
        appeal.approved_by_id = principal.id
        appeal.decided_at = now
        appeal.confirmed_by_id = appeal.confirmed_at = None
        clear_claim(appeal)
        transition(appeal, "approved", actor, "appeal.approve", public_note=statement,
                   data={"remedy": remedy, "reason_code": appeal.decision_reason_code}, before=before)
    elif action == "deny":
        if not reason_code:
            raise Invalid("A denial needs a reason code.", fields={"reason_code": "Choose a reason code."})
        code = reference.usable_reason_code(reason_code, "deny")
        appeal.decision_remedy = None
        appeal.decision_reason_code = code.code
        appeal.decision_statement = statement
        appeal.decided_at = now
        clear_claim(appeal)
        transition(appeal, "denied", actor, "appeal.deny", public_note=f"{statement}\n\nReason: {code.label}",
                   data={"reason_code": code.code}, before=before)
    elif action == "request_info":
        days = runtime.settings().info_request_days
        appeal.info_requested_at = now
        appeal.info_due_at = now + timedelta(days=days)
        db.session.add(Message(appeal_id=appeal.id, author_kind="staff", author_staff_id=principal.id, body=statement))
        # The claim is let go: the owner's reply puts the appeal back in the shared queue.
        clear_claim(appeal)
        note = f"{statement}\n\nPlease answer within {days} days; after that the review continues without it."
        transition(appeal, "info_requested", actor, "appeal.request_info", public_note=note,
                   data={"info_due_at": iso(appeal.info_due_at)}, before=before)
    else:  # escalate: the reason is for the seniors, not for the owner
        db.session.add(InternalNote(appeal_id=appeal.id, staff_id=principal.id, body="Escalated: " + statement))
        clear_claim(appeal)
        appeal.senior_only = True  # issue 13: stays with the seniors after any request for information
        transition(appeal, "escalated", actor, "appeal.escalate", before=before)
    db.session.commit()
    dispatch.mail()
    return appeal


@atomic
def confirm(principal, appeal_id: int, actor: Actor, expected_version: int | None = None) -> Appeal:
    """Four eyes: a senior other than the approver confirms; the correction is queued in the same commit."""
    appeal = _authorized(principal, "appeal.confirm", appeal_id)
    check_version(appeal, expected_version)
    if appeal.status != "approved":
        raise Conflict(f"Only an approved appeal can be confirmed; this one is {appeal.status}.",
                       code="not_approved")
    before = snapshot(appeal)
    appeal.confirmed_by_id = principal.id
    appeal.confirmed_at = utcnow()
    transition(appeal, "correction_queued", actor, "appeal.confirm",
               data={"remedy": appeal.decision_remedy}, before=before)
    # issue 13: flags the confirm entry written just above, before anything flushes it.
    staff_service.flag_new_staff_confirmation(principal, appeal, actor)
    corrections.queue_correction(appeal, actor)
    db.session.commit()
    corrections.dispatch()
    dispatch.mail()
    return appeal


@atomic
def send_back(principal, appeal_id: int, actor: Actor, reason: str, expected_version: int | None = None) -> Appeal:
    """A senior returns an approval to review instead of confirming it; the reason stays internal."""
    appeal = _authorized(principal, "appeal.send_back", appeal_id)
    check_version(appeal, expected_version)
    reason = _text(reason, "reason", required=True)
    if appeal.status != "approved":
        raise Conflict(f"Only an approved appeal can be sent back; this one is {appeal.status}.",
                       code="not_approved")
    before = snapshot(appeal)
    db.session.add(InternalNote(appeal_id=appeal.id, staff_id=principal.id, body="Sent back: " + reason))
    appeal.approved_by_id = None
    appeal.decided_at = None
    appeal.decision_remedy = appeal.decision_reason_code = appeal.decision_statement = None
    transition(appeal, "in_review", actor, "appeal.send_back", before=before)
    db.session.commit()
    dispatch.mail()
    return appeal


# --- notes and messages ----------------------------------------------------------------------


@atomic
def add_note(principal, appeal_id: int, actor: Actor, body: str) -> InternalNote:
    """An internal note among staff; never shown to the owner."""
    appeal = _authorized(principal, "appeal.note", appeal_id)
    body = _text(body, "body", required=True)
    before = snapshot(appeal)
    note = InternalNote(appeal_id=appeal.id, staff_id=principal.id, body=body)
    db.session.add(note)
    _touch(appeal, principal)
    record_action(appeal, actor, "appeal.note", before)
    db.session.commit()
    return note


@atomic
def send_message(principal, appeal_id: int, actor: Actor, body: str, expected_version: int | None = None
                 ) -> Message:
    """A message to the owner, on their appeal page and by email; placeholders must be filled."""
    appeal = _authorized(principal, "appeal.message", appeal_id)
    check_version(appeal, expected_version)
    body = _text(body, "body", required=True)
    reference.require_filled(body, "body")
    before = snapshot(appeal)
    message = Message(appeal_id=appeal.id, author_kind="staff", author_staff_id=principal.id, body=body)
    db.session.add(message)
    url = f"{runtime.settings().public_url}/appeals/{appeal.id}"
    notify.enqueue(appeal.contact_email, f"A message about your appeal #{appeal.id}",
                   f"Hello,\n\nThe review team wrote about your appeal #{appeal.id}:\n\n{body}\n\n"
                   f"Read and answer it on your appeal page: {url}\n", "message")
    _touch(appeal, principal)
    record_action(appeal, actor, "appeal.message", before)
    db.session.commit()
    dispatch.mail()
    return message


# --- expiry ----------------------------------------------------------------------------------


def expire_stale(now: datetime | None = None) -> dict:
    """Return unanswered information requests to review and free idle claims; returns the counts."""
    now = now or utcnow()
    system = Actor.system("expiry")
    counts = {"info_requests": 0, "claims": 0}
    overdue_requests = db.session.scalars(
        select(Appeal.id).where(Appeal.status == "info_requested", Appeal.info_due_at < now)
        .order_by(Appeal.id).limit(EXPIRY_BATCH)
    ).all()
    idle_claims = db.session.scalars(
        select(Appeal.id).where(Appeal.assigned_to_id.is_not(None), Appeal.claim_touched_at < _cutoff(now))
        .order_by(Appeal.id).limit(EXPIRY_BATCH)
    ).all()
    if not overdue_requests and not idle_claims:
        return counts
    try:
        for appeal_id in overdue_requests:
            appeal = db.session.get(Appeal, appeal_id)
            if appeal.status == "info_requested" and appeal.info_due_at and appeal.info_due_at < now:
                transition(appeal, "in_review", system, "appeal.info_request_expired",
                           public_note="No reply arrived by the deadline, so the review continues "
                                       "with the information already provided.")
                counts["info_requests"] += 1
        for appeal_id in idle_claims:
            appeal = db.session.get(Appeal, appeal_id)
            if appeal.assigned_to_id is None or appeal.claim_touched_at >= _cutoff(now):
                continue
            _give_back(appeal, system, "appeal.claim_expired")
            counts["claims"] += 1
        db.session.commit()
    except StaleDataError:
        # Someone acted on one of these appeals meanwhile; their change wins, the next sweep retries.
        db.session.rollback()
        return {"info_requests": 0, "claims": 0}
    dispatch.mail()
    return counts


# --- helpers ---------------------------------------------------------------------------------


def _authorized(principal, action: str, appeal_id) -> Appeal:
    """The appeal, once `principal` may do `action` on it (role first: non-staff learn nothing)."""
    policy.authorize(principal, action)
    try:
        appeal = db.session.get(Appeal, int(appeal_id))
    except (TypeError, ValueError):
        appeal = None
    if appeal is None:
        raise NotFound("No such appeal.")
    policy.authorize(principal, action, appeal)
    return appeal


def _text(value, field: str, required: bool) -> str:
    # The one text rule of the request layer (limit, line ends, NUL), labelled for staff.
    return clean_text(value, field, f"The {field}", required) or ""
