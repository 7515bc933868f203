"""The queue's maintained counts: appeals per status, reason, SLA due day and filing day (`appeal_counts`),
the same per dataset the appeal appeared in (`appeal_dataset_counts`), their totals per status and reason
(`appeal_totals`), and each dataset row's copies of its appeal's status and sort keys (`appeal_datasets`).

Every write of an appeal through the ORM (filing, `services.appeals.transition`, anything else that adds,
moves or deletes one, or adds or removes one of its datasets) adjusts the counts in the same flush, so in
the same transaction: a rolled-back change leaves them untouched. The queue reads the counts per status and
the overdue count from here instead of counting 100,000 appeals per page (issue 15); `recount` rebuilds them
from the appeals table (after a bulk load that bypassed the ORM, say).
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, time
from functools import lru_cache
from typing import NamedTuple

from sqlalchemy import Date, DateTime, String, and_, bindparam, case, delete, event, func, insert, inspect
from sqlalchemy import literal, literal_column, select, union_all, update
from sqlalchemy.orm import Session

from appeals import db
from appeals import status as table
from appeals.db import utcnow
from appeals.models import Appeal, AppealCount, AppealDataset, AppealDatasetCount, AppealTotal

NO_DUE_DAY = date(9999, 12, 31)  # an appeal without a due date is never overdue
# Each appeal_datasets column that copies one of its appeal's (copy, appeal column): the status and the sort keys.
LINK_COPIES = (("appeal_status", "status"), ("appeal_created_at", "created_at"), ("appeal_due_at", "due_at"),
               ("appeal_footprint", "footprint_size"))
# The appeal's column defaults, which a new appeal does not have yet in the flush that files it.
_NEW_APPEAL = {"status": "filed", "footprint_size": 0}


def _day(moment) -> date:
    return moment.date() if isinstance(moment, datetime) else NO_DUE_DAY


def _key(status, reason, due_at, created_at) -> tuple:
    return (status or "filed", reason or "", _day(due_at), _day(created_at))


class _Pending(NamedTuple):
    """What the session's pending writes change: the counts by (status, reason, due day, filing day) and by
    (dataset, status, reason, due day, filing day); the new status of each stored appeal that moves; and each
    new dataset row with its appeal."""

    delta: Counter
    per_dataset: Counter
    moved: dict
    new_links: list


def _changes(session: Session) -> _Pending:
    """What the session's pending writes change. Reason, due date, filing time, footprint, and a dataset
    row's name and appeal never change once written; the status does."""
    delta, per_dataset = Counter(), Counter()
    moved, gone = {}, {}  # appeal id -> (appeal, old status, new status) / (appeal, old status)
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
            gone[obj.id] = (obj, old)
    for obj in session.dirty:
        if isinstance(obj, Appeal) and obj not in session.deleted:
            history = inspect(obj).attrs.status.history
            if history.deleted and history.added and history.deleted[0] != history.added[0]:
                delta[_key(history.deleted[0], obj.reason, obj.due_at, obj.created_at)] -= 1
                delta[_key(history.added[0], obj.reason, obj.due_at, obj.created_at)] += 1
                moved[obj.id] = (obj, history.deleted[0], history.added[0])

    # The stored datasets of the moved and deleted appeals move (or go) with them.
    if moved or gone:
        rows = session.connection().execute(
            select(AppealDataset.appeal_id, AppealDataset.dataset)
            .where(AppealDataset.appeal_id.in_(sorted(set(moved) | set(gone)))))
        for appeal_id, name in rows:
            if appeal_id in gone:
                obj, old = gone[appeal_id]
                per_dataset[(name, *_key(old, obj.reason, obj.due_at, obj.created_at))] -= 1
            else:
                obj, old, new = moved[appeal_id]
                per_dataset[(name, *_key(old, obj.reason, obj.due_at, obj.created_at))] -= 1
                per_dataset[(name, *_key(new, obj.reason, obj.due_at, obj.created_at))] += 1
    # Dataset rows added or removed on their own count at their appeal's status after this flush (a stored
    # row of a moved appeal was moved above, at its new status); those of a deleted appeal went with it.
    # A row taken out of appeal.datasets is deleted by the flush itself (delete-orphan), so it is found in
    # the collection's history, not yet in session.deleted.
    changed = [(obj, 1, None) for obj in session.new if isinstance(obj, AppealDataset)]
    changed += [(obj, -1, None) for obj in session.deleted if isinstance(obj, AppealDataset)]
    for appeal in session.dirty:
        if isinstance(appeal, Appeal) and appeal not in session.deleted and "datasets" in inspect(appeal).dict:
            changed += [(obj, -1, appeal) for obj in inspect(appeal).attrs.datasets.history.deleted
                        if inspect(obj).has_identity and obj not in session.deleted]
    owners, new_links = None, []
    for obj, sign, appeal in changed:
        if obj.appeal_id in gone:
            continue
        if appeal is None and obj.appeal_id is not None:
            appeal = session.get(Appeal, obj.appeal_id)
        elif appeal is None:  # added through appeal.datasets: the appeal id comes with the flush
            if owners is None:
                owners = {id(d): a for a in session if isinstance(a, Appeal) and "datasets" in inspect(a).dict
                          for d in a.datasets}
            appeal = owners.get(id(obj))
        if appeal is not None and appeal not in session.deleted:
            per_dataset[(obj.dataset, *_key(appeal.status, appeal.reason, appeal.due_at, appeal.created_at))] += sign
            if sign == 1:
                new_links.append((obj, appeal))
    return _Pending(Counter({k: v for k, v in delta.items() if v}), Counter({k: v for k, v in per_dataset.items() if v}),
                    {appeal_id: new for appeal_id, (_obj, _old, new) in moved.items()}, new_links)


@event.listens_for(Session, "before_flush")
def _keep_counts(session: Session, _context, _instances) -> None:
    if not any(isinstance(obj, (Appeal, AppealDataset)) for obj in (*session.new, *session.dirty, *session.deleted)):
        return
    delta, per_dataset, moved, new_links = _changes(session)
    # The dataset rows' copies of their appeal's status and sort keys (the queue's dataset page walks them).
    for link, appeal in new_links:
        for copy, source in LINK_COPIES:
            value = getattr(appeal, source)
            setattr(link, copy, _NEW_APPEAL.get(source) if value is None else value)
    if moved:
        session.connection().execute(_move_links_statement(),
                                     [{"moved_id": i, "moved_status": status} for i, status in sorted(moved.items())])
    if not (delta or per_dataset):
        return
    conn = session.connection()
    upsert = _upsert_for(conn.dialect.name)
    # One statement per table, its rows in key order, the appeal counts first: two transactions moving
    # appeals between the same statuses lock the counter rows in the same order, so they wait for each
    # other instead of deadlocking.
    for model, changes, names in _maintained(delta, per_dataset):
        if changes:
            stmt = upsert(model).values([{**dict(zip(names, key)), "appeals": change}
                                         for key, change in sorted(changes.items())])
            conn.execute(stmt.on_conflict_do_update(index_elements=list(names),
                                                    set_={"appeals": model.appeals + stmt.excluded.appeals}))


def _maintained(counts: Counter, per_dataset: Counter) -> tuple:
    """(model, counts by key, key columns) of each maintained table, in the order their rows are locked."""
    return ((AppealCount, counts, ("status", "reason", "due_day", "created_day")),
            (AppealDatasetCount, per_dataset, ("dataset", "status", "reason", "due_day", "created_day")),
            (AppealTotal, _totals(counts, per_dataset), ("dataset", "status", "reason")))


def _totals(counts: Counter, per_dataset: Counter) -> Counter:
    """The counts summed per (dataset, status, reason); dataset "" is every appeal."""
    totals = Counter()
    for (status, reason, _due, _filed), n in counts.items():
        totals[("", status, reason)] += n
    for (name, status, reason, _due, _filed), n in per_dataset.items():
        totals[(name, status, reason)] += n
    return Counter({k: v for k, v in totals.items() if v})


@lru_cache(maxsize=1)
def _move_links_statement():
    links = AppealDataset.__table__
    return (update(links).where(links.c.appeal_id == bindparam("moved_id"))
            .values(appeal_status=bindparam("moved_status")))


def _upsert_for(dialect: str):
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as upsert
    else:
        from sqlalchemy.dialects.sqlite import insert as upsert
    return upsert


def recount() -> None:
    """Rebuild the counts, the totals and the dataset rows' copies of their appeal's status and sort keys
    from the appeals and their datasets (the caller commits)."""
    appeals, links = Appeal.__table__, AppealDataset.__table__
    db.session.execute(update(links).values({
        copy: select(appeals.c[source]).where(appeals.c.id == links.c.appeal_id).scalar_subquery()
        for copy, source in LINK_COPIES}))
    db.session.execute(delete(AppealCount))
    db.session.execute(delete(AppealDatasetCount))
    db.session.execute(delete(AppealTotal))
    delta = Counter()
    for status, reason, due_at, created_at in db.session.execute(
            select(Appeal.status, Appeal.reason, Appeal.due_at, Appeal.created_at)):
        delta[_key(status, reason, due_at, created_at)] += 1
    per_dataset = Counter()
    for name, status, reason, due_at, created_at in db.session.execute(
            select(AppealDataset.dataset, Appeal.status, Appeal.reason, Appeal.due_at, Appeal.created_at)
            .join(Appeal, Appeal.id == AppealDataset.appeal_id)):
        per_dataset[(name, *_key(status, reason, due_at, created_at))] += 1
    for model, counted, names in _maintained(delta, per_dataset):
        rows = [{**dict(zip(names, key)), "appeals": n} for key, n in counted.items()]
        for start in range(0, len(rows), 5000):
            db.session.execute(insert(model), rows[start:start + 5000])


def one_of(column, values):
    """`column IN (values)` for constant values (statuses), bound once in the statement: a cached statement
    with a plain `in_` would expand its list again at every execution."""
    return column.in_([literal(value) for value in values])


def figures(now: datetime, reason: str = "", unassigned_since: datetime | None = None,
            created_by: datetime | None = None, dataset: str = "") -> tuple[dict, dict]:
    """(appeals per status, undecided appeals past their due time per status), in one statement.

    Filters: one reason; one dataset (its counts in appeal_dataset_counts); `unassigned_since` (the
    idle-claim cutoff) leaves out the appeals under a live claim (touched since then: a few, on the
    claim_touched_at index); `created_by` keeps the appeals filed by then (the minimum-age filter). Whole
    days come from the counts; the edges are read from the appeals' indexes: the appeals due since
    midnight, the appeals filed on `created_by`'s day.
    """
    params = {"now": now, "midnight": datetime.combine(now.date(), time()), "today": now.date(),
              "reason": reason, "dataset": dataset, "since": unassigned_since, "created_by": created_by}
    if created_by is not None:
        params.update(first=datetime.combine(created_by.date(), time()), created_day=created_by.date())
    every, late = Counter(), Counter()
    statement = _figures_statement(bool(reason), bool(dataset), unassigned_since is not None, created_by is not None)
    for status, n, late_n in db.session.connection().execute(statement, params):
        every[status] += int(n or 0)
        late[status] += int(late_n or 0)
    return dict(every), dict(late)


@lru_cache(maxsize=None)
def _figures_statement(by_reason: bool, by_dataset: bool, unassigned: bool, by_age: bool):
    """The figures' statement for one shape of filters, built once (values are bound at execution):
    rows of (status, appeals, of them past due), summed per status by the caller."""
    counts = (AppealDatasetCount if by_dataset else AppealCount).__table__.c
    appeals = Appeal.__table__
    undecided = one_of(appeals.c.status, table.UNDECIDED)
    late_now = and_(undecided, appeals.c.due_at < bindparam("now", type_=DateTime))
    kept = [counts.reason == bindparam("reason", type_=String)] if by_reason else []
    read = [appeals.c.reason == bindparam("reason", type_=String)] if by_reason else []
    if by_dataset:
        kept.append(counts.dataset == bindparam("dataset", type_=String))
        read.append(appeals.c.id.in_(select(AppealDataset.__table__.c.appeal_id)
                                     .where(AppealDataset.__table__.c.dataset == bindparam("dataset", type_=String))))
    before_edge = []
    if by_age:
        kept.append(counts.created_day < bindparam("created_day", type_=Date))
        before_edge = [appeals.c.created_at < bindparam("first", type_=DateTime)]
    late_count = case((late_now, 1), else_=0)
    if by_age:
        # Every day filed before created_by's day, read from the counts, with those due before today.
        branches = [
            select(counts.status.label("status"), func.sum(counts.appeals).label("n"),
                   func.sum(case((and_(one_of(counts.status, table.UNDECIDED),
                                       counts.due_day < bindparam("today", type_=Date)), counts.appeals), else_=0))
                   .label("late"))
            .where(*kept).group_by(counts.status),
        ]
    else:
        # The totals (a few dozen rows; dataset "" is every appeal), every undecided one counted as late,
        # less those due today or later (the (status, due day) index: a few weeks of rows).
        totals = AppealTotal.__table__.c
        undecided_total = case((one_of(totals.status, table.UNDECIDED), totals.appeals), else_=0)
        branches = [
            select(totals.status.label("status"), func.sum(totals.appeals).label("n"),
                   func.sum(undecided_total).label("late"))
            .where(totals.dataset == bindparam("dataset", type_=String),
                   *([totals.reason == bindparam("reason", type_=String)] if by_reason else []))
            .group_by(totals.status),
            select(counts.status, literal_column("0"), -func.sum(counts.appeals))
            .where(one_of(counts.status, table.UNDECIDED), counts.due_day >= bindparam("today", type_=Date), *kept)
            .group_by(counts.status),
        ]
    # Due today, before now (filed before created_by's day: that day's appeals are the next branch's).
    branches.append(select(appeals.c.status, literal_column("0"), func.count())
                    .where(late_now, appeals.c.due_at >= bindparam("midnight", type_=DateTime), *before_edge, *read)
                    .group_by(appeals.c.status))
    if by_age:
        # The appeals filed on created_by's day, by then, read from the (status, created_at) index.
        branches.append(
            select(appeals.c.status, func.count(), func.sum(late_count))
            .where(one_of(appeals.c.status, table.STATUSES), appeals.c.created_at >= bindparam("first", type_=DateTime),
                   appeals.c.created_at <= bindparam("created_by", type_=DateTime), *read)
            .group_by(appeals.c.status))
    if unassigned:
        # Less the appeals under a live claim, counted once with those of them past due.
        held = [appeals.c.claim_touched_at >= bindparam("since", type_=DateTime),
                appeals.c.assigned_to_id.is_not(None), *read]
        if by_age:
            held.append(appeals.c.created_at <= bindparam("created_by", type_=DateTime))
        branches.append(select(appeals.c.status, -func.count(), -func.sum(late_count))
                        .where(*held).group_by(appeals.c.status))
    return union_all(*branches)
