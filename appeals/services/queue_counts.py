"""The queue's maintained counts: appeals per status, reason, SLA due day and filing day (`appeal_counts`).

Every write of an appeal through the ORM (filing, `services.appeals.transition`, anything else that adds,
moves or deletes one) adjusts the counts in the same flush, so in the same transaction: a rolled-back
change leaves them untouched. The queue reads the counts per status and the overdue count from here
instead of counting 100,000 appeals per page (issue 15); `recount` rebuilds them from the appeals
table (after a bulk load that bypassed the ORM, say).
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, time

from sqlalchemy import and_, delete, event, func, insert, inspect, literal, select, union_all
from sqlalchemy.orm import Session

from appeals import db
from appeals import status as table
from appeals.db import utcnow
from appeals.models import Appeal, AppealCount

NO_DUE_DAY = date(9999, 12, 31)  # an appeal without a due date is never overdue


def _day(moment) -> date:
    return moment.date() if isinstance(moment, datetime) else NO_DUE_DAY


def _key(status, reason, due_at, created_at) -> tuple:
    return (status or "filed", reason or "", _day(due_at), _day(created_at))


def _changes(session: Session) -> Counter:
    """The count changes the session's pending appeal writes make, by (status, reason, due day)."""
    delta = Counter()
    for obj in session.new:
        if isinstance(obj, Appeal):
            if obj.created_at is None:  # the column's default, given now so the row and its count agree
                obj.created_at = utcnow()
            delta[_key(obj.status, obj.reason, obj.due_at, obj.created_at)] += 1
    for obj in session.deleted:
        if isinstance(obj, Appeal):
            history = inspect(obj).attrs.status.history
            old = (history.deleted or history.unchanged or [obj.status])[0]
            delta[_key(old, obj.reason, obj.due_at, obj.created_at)] -= 1
    for obj in session.dirty:
        if isinstance(obj, Appeal) and obj not in session.deleted:
            history = inspect(obj).attrs.status.history
            if history.deleted and history.added and history.deleted[0] != history.added[0]:
                delta[_key(history.deleted[0], obj.reason, obj.due_at, obj.created_at)] -= 1
                delta[_key(history.added[0], obj.reason, obj.due_at, obj.created_at)] += 1
    return Counter({k: v for k, v in delta.items() if v})


@event.listens_for(Session, "before_flush")
def _keep_counts(session: Session, _context, _instances) -> None:
    delta = _changes(session)
    if not delta:
        return
    conn = session.connection()
    upsert = _upsert_for(conn.dialect.name)
    # Always in key order: two transactions moving appeals between the same statuses lock the
    # counter rows in the same order, so they wait for each other instead of deadlocking.
    for (status, reason, due_day, created_day), change in sorted(delta.items()):
        stmt = upsert(AppealCount).values(status=status, reason=reason, due_day=due_day, created_day=created_day,
                                          appeals=change)
        conn.execute(stmt.on_conflict_do_update(
            index_elements=["status", "reason", "due_day", "created_day"],
            set_={"appeals": AppealCount.appeals + change}))


def _upsert_for(dialect: str):
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as upsert
    else:
        from sqlalchemy.dialects.sqlite import insert as upsert
    return upsert


def recount() -> None:
    """Rebuild the counts from the appeals table (the caller commits)."""
    db.session.execute(delete(AppealCount))
    delta = Counter()
    for status, reason, due_at, created_at in db.session.execute(
            select(Appeal.status, Appeal.reason, Appeal.due_at, Appeal.created_at)):
        delta[_key(status, reason, due_at, created_at)] += 1
    rows = [{"status": s, "reason": r, "due_day": d, "created_day": c, "appeals": n} for (s, r, d, c), n in delta.items()]
    for start in range(0, len(rows), 5000):
        db.session.execute(insert(AppealCount), rows[start:start + 5000])


def figures(now: datetime, reason: str = "", unassigned_since: datetime | None = None,
            created_by: datetime | None = None) -> tuple[dict, dict]:
    """(appeals per status, undecided appeals past their due time per status), in one statement.

    Filters: one reason; `unassigned_since` (the idle-claim cutoff) leaves out the appeals under a live
    claim (touched since then: a few, on the claim_touched_at index); `created_by` keeps the appeals filed
    by then (the minimum-age filter). Whole days come from the counts; the edges are read from the
    appeals' indexes: the appeals due since midnight, the appeals filed on `created_by`'s day.
    """
    midnight = datetime.combine(now.date(), time())
    late_now = and_(Appeal.status.in_(table.UNDECIDED), Appeal.due_at < now)
    kept = [AppealCount.reason == reason] if reason else []
    read = [Appeal.reason == reason] if reason else []
    edge = []  # the appeals filed on created_by's day (by then), read from the (status, created_at) index
    if created_by is not None:
        first = datetime.combine(created_by.date(), time())
        kept.append(AppealCount.created_day < created_by.date())
        edge = [Appeal.status.in_(table.STATUSES), Appeal.created_at >= first, Appeal.created_at <= created_by]
        before_edge = [Appeal.created_at < first]
    else:
        before_edge = []
    branches = [
        select(literal("all").label("figure"), AppealCount.status.label("status"),
               func.sum(AppealCount.appeals).label("n")).where(*kept).group_by(AppealCount.status),
        select(literal("late"), AppealCount.status, func.sum(AppealCount.appeals))
        .where(AppealCount.status.in_(table.UNDECIDED), AppealCount.due_day < now.date(), *kept)
        .group_by(AppealCount.status),
        # Due today, before now (filed before created_by's day: that day's appeals are the next branch's).
        select(literal("late"), Appeal.status, func.count())
        .where(late_now, Appeal.due_at >= midnight, *before_edge, *read).group_by(Appeal.status),
    ]
    if edge:
        branches += [
            select(literal("all"), Appeal.status, func.count()).where(*edge, *read).group_by(Appeal.status),
            select(literal("late"), Appeal.status, func.count()).where(*edge, late_now, *read).group_by(Appeal.status),
        ]
    if unassigned_since is not None:
        held = and_(Appeal.claim_touched_at >= unassigned_since, Appeal.assigned_to_id.is_not(None), *read,
                    *([Appeal.created_at <= created_by] if created_by is not None else []))
        branches += [
            select(literal("held"), Appeal.status, func.count()).where(held).group_by(Appeal.status),
            select(literal("held_late"), Appeal.status, func.count()).where(held, late_now).group_by(Appeal.status),
        ]
    found = {"all": Counter(), "late": Counter(), "held": Counter(), "held_late": Counter()}
    for figure, status, n in db.session.execute(union_all(*branches)):
        found[figure][status] += int(n or 0)
    found["all"].subtract(found["held"])
    found["late"].subtract(found["held_late"])
    return dict(found["all"]), dict(found["late"])
