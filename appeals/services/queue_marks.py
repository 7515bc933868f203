"""Queue markers: which appeals the owner has just answered, and which a senior returned for more review."""

from __future__ import annotations

from sqlalchemy import func, literal, select, union_all

from appeals import db
from appeals.models import AppealEvent, Message

REASON_SHORT = {
    "included_in_error": "Included in error",
    "compromised": "Compromised account",
    "other": "Another reason",
}


def markers(appeal_ids: list[int]) -> dict[int, set[str]]:
    """appeal id -> {"owner_replied", "returned"}: the owner wrote last (after the team), and the appeal's
    latest status change was a senior sending an approval back. One query for the whole page."""
    marks: dict[int, set[str]] = {i: set() for i in appeal_ids}
    if not appeal_ids:
        return marks
    last_message = (select(Message.appeal_id, func.max(Message.id).label("id"))
                     .where(Message.appeal_id.in_(appeal_ids)).group_by(Message.appeal_id).subquery())
    last_event = (select(AppealEvent.appeal_id, func.max(AppealEvent.id).label("id"))
                  .where(AppealEvent.appeal_id.in_(appeal_ids)).group_by(AppealEvent.appeal_id).subquery())
    # One round trip for the page: the last message's author and the last status change, side by side.
    query = union_all(
        select(Message.appeal_id.label("appeal_id"), literal("message").label("what"),
               Message.author_kind.label("a"), literal("").label("b"))
        .join(last_message, Message.id == last_message.c.id),
        select(AppealEvent.appeal_id, literal("event"), func.coalesce(AppealEvent.status_from, ""),
               AppealEvent.status_to)
        .join(last_event, AppealEvent.id == last_event.c.id),
    )
    for appeal_id, what, a, b in db.session.execute(query):
        if what == "message" and a == "account":
            marks[appeal_id].add("owner_replied")
        elif what == "event" and a == "approved" and b == "in_review":
            marks[appeal_id].add("returned")
    return marks
    last_message = (select(Message.appeal_id, func.max(Message.id).label("id"))
                    .where(Message.appeal_id.in_(appeal_ids)).group_by(Message.appeal_id).subquery())
    for appeal_id, author in db.session.execute(
            select(Message.appeal_id, Message.author_kind).join(last_message, Message.id == last_message.c.id)):
        if author == "account":
            marks[appeal_id].add("owner_replied")
    last_event = (select(AppealEvent.appeal_id, func.max(AppealEvent.id).label("id"))
                  .where(AppealEvent.appeal_id.in_(appeal_ids)).group_by(AppealEvent.appeal_id).subquery())
    for appeal_id, status_from, status_to in db.session.execute(
            select(AppealEvent.appeal_id, AppealEvent.status_from, AppealEvent.status_to)
            .join(last_event, AppealEvent.id == last_event.c.id)):
        if status_from == "approved" and status_to == "in_review":
            marks[appeal_id].add("returned")
    return marks
