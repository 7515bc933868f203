"""The appeals just before and just after one appeal in the default review queue (the appeal page's j / k links).

Two indexed LIMIT 1 queries instead of reading a 100-row queue page on every view: per waiting status, the
nearest appeal on each side along the queue's default order (oldest first: created_at, then id), walking the
(status, created_at) index; the nearest of those is the neighbour. The queue's order and default filter are
the queue service's (services/queue.py); nothing about them is restated here.
"""

from __future__ import annotations

from sqlalchemy import and_, or_, select, union_all

from appeals import db
from appeals.models import Appeal
from appeals.services import policy, queue


def neighbours(principal, appeal_id: int) -> tuple[int | None, int | None]:
    """(previous, next) appeal ids around `appeal_id` in the default queue; for an appeal not in it, (None,
    the first appeal of the queue). Reads only."""
    policy.authorize(principal, "queue.view")
    # The default filter's statuses; its order (oldest first) is what _nearest walks: the tests compare the
    # links with the queue page's own order.
    statuses = queue.STATUS_GROUPS[queue.QueueFilters().status]
    found = db.session.execute(select(Appeal.status, Appeal.created_at).where(Appeal.id == appeal_id)).one_or_none()
    if found is None or found.status not in statuses:
        return None, _nearest(statuses, None, appeal_id, after=True)
    return (_nearest(statuses, found.created_at, appeal_id, after=False),
            _nearest(statuses, found.created_at, appeal_id, after=True))


def _nearest(statuses, created_at, appeal_id: int, after: bool) -> int | None:
    """The id of the first appeal after (or the last before) (created_at, appeal_id) in queue order, over
    `statuses`; with created_at None, the very first one. One statement: one LIMIT 1 branch per status."""
    branches = []
    for status in statuses:
        conditions = [Appeal.status == status]
        if created_at is not None:
            if after:
                conditions += [Appeal.created_at >= created_at,
                               or_(Appeal.created_at > created_at, Appeal.id > appeal_id)]
            else:
                conditions += [Appeal.created_at <= created_at,
                               or_(Appeal.created_at < created_at, Appeal.id < appeal_id)]
        order = (Appeal.created_at.asc(), Appeal.id.asc()) if after else (Appeal.created_at.desc(), Appeal.id.desc())
        branches.append(select(select(Appeal.id.label("id"), Appeal.created_at.label("key"))
                               .where(and_(*conditions)).order_by(*order).limit(1).subquery()))
    merged = union_all(*branches).subquery()
    order = (merged.c.key.asc(), merged.c.id.asc()) if after else (merged.c.key.desc(), merged.c.id.desc())
    return db.session.scalar(select(merged.c.id).order_by(*order).limit(1))
