"""The appeal state machine: every status change goes through `transition`.

Other services (filing, review, corrections) decide *when* to move an appeal;
this module alone decides *whether* a move is allowed and records it: the
timeline event, the audit entry and the owner's email, all in the caller's
transaction.
"""

from __future__ import annotations

from appeals import db
from appeals.models import Appeal, AppealEvent, Message
from appeals.i18n import gettext as _
from appeals.i18n import lazy_gettext as _l
from appeals.services import audit, notify
from appeals.services.audit import Actor
from appeals.services.errors import Conflict

# from-status -> statuses it may move to.
TRANSITIONS: dict[str, frozenset[str]] = {
    "filed": frozenset({"in_review", "withdrawn"}),
    # in_review -> filed: the claim was released or expired before a decision.
    "in_review": frozenset({"filed", "info_requested", "escalated", "approved", "denied", "withdrawn"}),
    "info_requested": frozenset({"in_review", "withdrawn"}),
    "escalated": frozenset({"info_requested", "approved", "denied", "withdrawn"}),
    # approved -> in_review: a senior sends an approval back instead of confirming it.
    "approved": frozenset({"correction_queued", "in_review", "withdrawn"}),
    "correction_queued": frozenset({"correcting", "corrected", "correction_failed"}),
    # correcting -> correction_queued: a worker died and the run is taken again.
    "correcting": frozenset({"corrected", "correction_failed", "correction_queued"}),
    "correction_failed": frozenset({"correction_queued"}),
    "corrected": frozenset(),
    "denied": frozenset(),
    "withdrawn": frozenset(),
}

# What each status means to the owner, and what comes next: shown on pages and in emails,
# translated lazily (issue 16) into the locale in force where they are shown.
STATUS_TEXT: dict[str, tuple] = {
    "filed": (_l("Filed"), _l("Your appeal is waiting for a reviewer. You will get an email when that changes.")),
    "in_review": (_l("In review"), _l("A reviewer is looking at your appeal and the published data.")),
    "info_requested": (
        _l("Information requested"),
        _l("The reviewer needs more information from you. Please answer on the appeal page."),
    ),
    "escalated": (_l("Escalated"), _l("Your appeal has been passed to a senior reviewer.")),
    "approved": (
        _l("Approved, awaiting confirmation"),
        _l("A reviewer approved your appeal. A second, senior reviewer must confirm it before the data changes."),
    ),
    "correction_queued": (
        _l("Correction queued"),
        _l("Your appeal was approved and confirmed. The published datasets are about to be corrected."),
    ),
    "correcting": (_l("Correcting"), _l("The published datasets are being corrected now.")),
    "corrected": (
        _l("Corrected"),
        _l("A corrected release of every dataset concerned has been published. Nothing more is needed from you."),
    ),
    "correction_failed": (
        _l("Correction delayed"),
        _l("The correction hit a problem and has not been published yet. The team has been told and will retry."),
    ),
    "denied": (_l("Denied"), _l("The reviewers decided not to change the published data. Their reasons are below.")),
    "withdrawn": (_l("Withdrawn"), _l("You withdrew this appeal.")),
}


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


def can_move(from_status: str, to_status: str) -> bool:
    """True when the state machine allows `from_status` -> `to_status`."""
    return to_status in TRANSITIONS.get(from_status, frozenset())


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
    """Move `appeal` to `to_status`, recording the event, the audit entry and the owner's email.

    `before` is the audited state before the caller's other changes; defaults to now.
    """
    if not can_move(appeal.status, to_status):
        raise Conflict(
            f"An appeal that is {appeal.status} cannot become {to_status}.", code="invalid_transition"
        )
    before = before or snapshot(appeal)
    from_status = appeal.status
    appeal.status = to_status
    event = AppealEvent(
        appeal_id=appeal.id,
        status_from=from_status,
        status_to=to_status,
        actor_kind=actor.kind,
        actor_id=actor.id,
        public_note=public_note,
        data=data,
    )
    db.session.add(event)
    db.session.flush()  # bumps appeal.version, so the audit entry shows the new one
    audit.record(actor, action, "appeal", appeal.id, before, snapshot(appeal))
    if _owner_should_hear(appeal, from_status, to_status):
        notify.status_changed(appeal, event)
    return event


def _owner_should_hear(appeal: Appeal, from_status: str, to_status: str) -> bool:
    # Claims coming and going are the team's business: the owner hears that a
    # reviewer started once, and never that a claim was released or expired.
    if to_status == "filed":
        return False
    if to_status == "in_review" and from_status == "filed":
        earlier = (
            db.session.query(AppealEvent.id)
            .filter(AppealEvent.appeal_id == appeal.id, AppealEvent.status_to == "in_review")
            .count()
        )
        return earlier <= 1  # the event just added is one of them
    return True


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
            "at": e.created_at.isoformat() + "Z",
            "status": e.status_to,
            "from_status": e.status_from,
            "title": str(STATUS_TEXT[e.status_to][0]),
            "note": e.public_note,
            "data": _owner_data(e.data) if for_owner else e.data,
            "actor": e.actor_kind,
            **({} if for_owner else {"actor_id": e.actor_id}),
        }
        for e in events
    ] + [
        {
            "type": "message",
            "at": m.created_at.isoformat() + "Z",
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
