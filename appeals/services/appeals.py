"""The appeal state machine's enforcement: every status change, filing included, goes through `transition`.

Other services (filing, review, corrections) decide *when* to move an appeal; the
status table (appeals/status.py) decides *whether* a move is allowed and who hears
of it; this module records it: the timeline event, the audit entry and the owner's
email, all in the caller's transaction.
"""

from __future__ import annotations

from appeals import db
from appeals import status as table
from appeals.models import Appeal, AppealEvent, Message
from appeals.i18n import gettext as _
from appeals.requests import iso
from appeals.services import audit, notify
from appeals.services import queue_counts  # noqa: F401  (keeps the queue's counts with every status change)
from appeals.services.audit import Actor
from appeals.services.errors import Conflict

# Re-exported for callers that read the table through the state machine.
STATUS_TEXT = table.STATUS_TEXT
TRANSITIONS = table.TRANSITIONS
can_move = table.can_move


def snapshot(appeal: Appeal) -> dict:
    """The audited state of an appeal: enough to show what an action changed."""
    return {
        "status": appeal.status,
        "version": appeal.version,
        "assigned_to_id": appeal.assigned_to_id,
        "decision_remedy": appeal.decision_remedy,
        "decision_reason_code": appeal.decision_reason_code,
        "approved_by_id": appeal.approved_by_id,
        "confirmed_by_id": appeal.confirmed_by_id,
    }


def check_version(appeal: Appeal, expected: int | None) -> None:
    """Refuse an action based on a stale view of the appeal (HTTP 409)."""
    if expected is not None and int(expected) != appeal.version:
        raise Conflict(
            _("This appeal changed since you loaded it. Reload the page to see the current state, then try again."),
            code="stale_version",
        )


def transition(
    appeal: Appeal,
    to_status: str,
    actor: Actor,
    action: str,
    public_note: str | None = None,
    data: dict | None = None,
    before: dict | None = None,
) -> AppealEvent:
    """Move `appeal` to `to_status`, recording the event, the audit entry and the email the table names.

    A new appeal (status None, not yet in the session) is filed this way too: it is
    added and flushed, and its audit entry has no before-state. `before` is the
    audited state before the caller's other changes; defaults to now.
    """
    from_status = appeal.status
    if not table.can_move(from_status, to_status):
        raise Conflict(
            f"An appeal that is {from_status or 'new'} cannot become {to_status}.", code="invalid_transition"
        )
    if from_status is not None:
        before = before or snapshot(appeal)
    appeal.status = to_status
    if appeal.id is None:
        db.session.add(appeal)
        db.session.flush()
    event = AppealEvent(
        appeal_id=appeal.id,
        status_from=from_status,
        status_to=to_status,
        actor_kind=actor.kind,
        actor_id=actor.id,
        public_note=public_note,
        data=data,
    )
    if from_status is None and appeal.created_at is not None:
        event.created_at = appeal.created_at  # the filing's event carries the appeal's own time
    db.session.add(event)
    db.session.flush()  # bumps appeal.version, so the audit entry shows the new one
    audit.record(actor, action, "appeal", appeal.id, before, snapshot(appeal))
    if _owner_should_hear(appeal, from_status, to_status):
        notify.status_changed(appeal, event)
    return event


def _owner_should_hear(appeal: Appeal, from_status: str | None, to_status: str) -> bool:
    who = table.mailed(from_status, to_status)
    if who == table.OWNER_FIRST_TIME:
        earlier = (
            db.session.query(AppealEvent.id)
            .filter(AppealEvent.appeal_id == appeal.id, AppealEvent.status_to == to_status)
            .count()
        )
        return earlier <= 1  # the event just added is one of them
    return who == table.OWNER


def clear_claim(appeal: Appeal) -> None:
    """End any reviewer's claim on the appeal (in the caller's transaction)."""
    appeal.assigned_to_id = None
    appeal.claimed_at = None
    appeal.claim_touched_at = None


def record_action(appeal: Appeal, actor: Actor, action: str, before: dict | None = None) -> None:
    """Audit an action that changes an appeal without changing its status (claim, note...)."""
    db.session.flush()
    audit.record(actor, action, "appeal", appeal.id, before, snapshot(appeal))


def timeline(appeal: Appeal, for_owner: bool) -> list[dict]:
    """The appeal's history, oldest first: status events and messages, never internal notes."""
    events = db.session.query(AppealEvent).filter_by(appeal_id=appeal.id).order_by(AppealEvent.id).all()
    messages = db.session.query(Message).filter_by(appeal_id=appeal.id).order_by(Message.id).all()
    items = [
        {
            "type": "status",
            "at": iso(e.created_at),
            "status": e.status_to,
            "from_status": e.status_from,
            "title": table.title(e.status_to),
            "note": e.public_note,
            "data": _owner_data(e.data) if for_owner else e.data,
            "actor": e.actor_kind,
            **({} if for_owner else {"actor_id": e.actor_id}),
        }
        for e in events
    ] + [
        {
            "type": "message",
            "at": iso(m.created_at),
            "from": "you" if (for_owner and m.author_kind == "account") else m.author_kind,
            "body": m.body,
            **({} if for_owner else {"author_staff_id": m.author_staff_id}),
        }
        for m in messages
    ]
    return sorted(items, key=lambda item: item["at"])


def _owner_data(data: dict | None) -> dict | None:
    # Only fields meant for the owner leave the building: release versions, the remedy.
    if not data:
        return None
    allowed = {key: data[key] for key in ("releases", "remedy", "reason_code") if key in data}
    return allowed or None
