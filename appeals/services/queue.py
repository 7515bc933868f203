"""The review queue: filters, sorting, pagination, counts per status, and the dashboard's metrics.

A queue page costs a fixed number of queries however long the queue is: one for the counts per status
and the overdue count (read from the maintained counts, services/queue_counts.py, for every filter but
"assigned to me", which counts the caller's few live claims), one for the page's rows (exactly the columns
shown, account and assignee joined), and one for their datasets. Statements are built once per shape of
filters and executed through SQLAlchemy Core: a request does not construct SQL nor load ORM objects.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from sqlalchemy import Integer, and_, any_, bindparam, case, func, or_, select, union_all

from appeals import db, runtime
from appeals import status as table
from appeals.db import utcnow
from appeals.models import (APPEAL_STATUSES, OPEN_STATUSES, REASONS, Account, Appeal, AppealDataset, Correction,
                            CorrectionRun, Staff)
from appeals.requests import iso, number_problem
from appeals.services import corrections, policy, queue_counts
from appeals.services.errors import Invalid

# The queue's default view: what staff still have to act on, exactly; an appeal waiting on its owner's
# answer is not waiting for staff (issue 15).
WAITING_STATUSES = table.WAITING_FOR_STAFF
# Undecided appeals run against the SLA clock; decided ones have stopped it.
UNDECIDED_STATUSES = table.UNDECIDED
STATUS_GROUPS = {"waiting": WAITING_STATUSES, "open": OPEN_STATUSES, "all": APPEAL_STATUSES}
_APPEALS = Appeal.__table__
# Each sort as (column, descending) keys; every one ends on the id, so pages never overlap.
SORTS = {
    "oldest": ((_APPEALS.c.created_at, False), (_APPEALS.c.id, False)),
    "newest": ((_APPEALS.c.created_at, True), (_APPEALS.c.id, True)),
    "due": ((_APPEALS.c.due_at, False), (_APPEALS.c.id, False)),
    "footprint": ((_APPEALS.c.footprint_size, True), (_APPEALS.c.created_at, False), (_APPEALS.c.id, False)),
}
ASSIGNED = ("", "me", "unassigned")
MAX_PER_PAGE = 100


@dataclass(frozen=True)
class QueueFilters:
    """A validated queue request (from page query strings and the API alike)."""

    status: str = "waiting"
    reason: str = ""
    dataset: str = ""
    assigned: str = ""
    min_age_days: int | None = None
    overdue: bool = False
    sort: str = "oldest"
    page: int = 1
    per_page: int = 25

    def as_params(self, **changes) -> dict:
        """Query-string parameters reproducing these filters (with `changes`), defaults left out."""
        values = {**asdict(self), **changes}
        defaults = asdict(QueueFilters())
        return {k: ("1" if v is True else v) for k, v in values.items() if v != defaults[k] and v not in (None, "")}


@dataclass
class QueuePage:
    """One page of the queue with the figures shown around it."""

    filters: QueueFilters
    items: list
    total: int
    counts: dict  # status -> number of appeals matching every filter but the status
    overdue: int  # matching appeals (status filter included) past their SLA due date
    now: datetime
    claim_cutoff: datetime

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.filters.per_page))


def parse_filters(args) -> QueueFilters:
    """Validate query parameters (a mapping of strings) into QueueFilters; Invalid names every bad one."""
    problems = {}

    def choice(name, allowed, default=""):
        # Exact values only: the page's selects send them so, and "\r" is not a status (schemathesis).
        value = args.get(name) or default
        if value not in allowed:
            problems[name] = "Choose one of: " + ", ".join(a for a in allowed if a) + "."
            return default
        return value

    def number(name, default, low, high):
        found, problem = number_problem(args.get(name), text=True, bounds=(low, high))
        if problem:
            problems[name] = problem
        return default if found is None else found

    status = choice("status", tuple(STATUS_GROUPS) + APPEAL_STATUSES, "waiting")
    reason = choice("reason", ("",) + REASONS)
    assigned = choice("assigned", ASSIGNED)
    sort = choice("sort", tuple(SORTS), "oldest")
    dataset = (args.get("dataset") or "").strip()
    if len(dataset) > 128:
        problems["dataset"] = "At most 128 characters."
    overdue_raw = (args.get("overdue") or "").lower()
    if overdue_raw not in ("", "0", "1", "true", "false", "on", "yes", "no"):
        problems["overdue"] = "Use 1 or 0."
    filters = QueueFilters(
        status=status, reason=reason, dataset=dataset[:128], assigned=assigned,
        min_age_days=number("min_age_days", None, 0, 3650),
        overdue=overdue_raw in ("1", "true", "on", "yes"), sort=sort,
        page=number("page", 1, 1, 100000), per_page=number("per_page", 25, 1, MAX_PER_PAGE),
    )
    if problems:
        raise Invalid("Some queue filters are not valid.", code="invalid_filters", fields=problems)
    return filters


@dataclass(frozen=True, slots=True)
class QueueItem:
    """One queue row: exactly the columns the queue's page and API show (no ORM objects to load)."""

    id: int
    version: int
    status: str
    reason: str
    created_at: datetime
    due_at: datetime
    footprint_size: int
    assigned_to_id: int | None
    claim_touched_at: datetime | None
    screen_name: str
    user_id: str
    assignee_email: str | None
    datasets: tuple


def list_queue(principal, filters: QueueFilters) -> QueuePage:
    """One page of the queue for a staff member; reads only (the worker's sweep expires claims and requests).

    An idle claim shows as free here from the moment it lapses, before the sweep records it.
    """
    policy.authorize(principal, "queue.view")
    now = utcnow()
    cutoff = now - timedelta(minutes=runtime.settings().claim_idle_minutes)
    statuses = STATUS_GROUPS.get(filters.status, (filters.status,))
    created_by = None if filters.min_age_days is None else now - timedelta(days=filters.min_age_days)
    params = {"now": now, "cutoff": cutoff, "reason": filters.reason, "dataset": filters.dataset,
              "me": principal.id, "created_by": created_by}
    shape = (bool(filters.reason), bool(filters.dataset), filters.assigned, created_by is not None, filters.overdue)
    conn = db.session.connection()

    counts = {status: 0 for status in APPEAL_STATUSES}
    late_statuses = [s for s in statuses if s in UNDECIDED_STATUSES]
    if filters.assigned != "me":
        # Every filter but "mine": the maintained counts answer (services/queue_counts.py), less the few
        # appeals under a live claim for "unassigned".
        every, late = queue_counts.figures(now, filters.reason, cutoff if filters.assigned == "unassigned" else None,
                                           created_by, filters.dataset)
        counts.update(late if filters.overdue else every)
        late_per_status = late
    else:
        # The caller's own live claims (a few, on the assignee index), counted per status with those past due.
        late_per_status = {}
        for status, n, late_n in conn.execute(_mine_counts_statement(shape), params):
            counts[status], late_per_status[status] = n, int(late_n or 0)
    total = sum(counts[s] for s in statuses)
    overdue = sum(late_per_status.get(s, 0) for s in late_statuses)

    items = []
    if total:
        page_params = {**params, "limit": filters.per_page, "offset": (filters.page - 1) * filters.per_page,
                       "branch_limit": filters.page * filters.per_page}
        rows = conn.execute(_page_statement(shape, statuses, filters.sort), page_params).all()
        names: dict[int, list] = {row.id: [] for row in rows}
        if rows:
            for appeal_id, name in conn.execute(_datasets_statement(conn.dialect.name), {"ids": list(names)}):
                names[appeal_id].append(name)
        items = [QueueItem(*row, tuple(names[row.id])) for row in rows]  # the statement selects in field order
    return QueuePage(filters, items, total, counts, overdue, now, cutoff)


_ACCOUNTS = Account.__table__
_STAFF = Staff.__table__
_LINKS = AppealDataset.__table__
# The dataset rows' copies of the appeals' sort keys (kept by services/queue_counts.py).
_LINK_COPIES = {_APPEALS.c[source]: _LINKS.c[copy] for copy, source in queue_counts.LINK_COPIES}
_LINK_COPIES[_APPEALS.c.id] = _LINKS.c.appeal_id


@lru_cache(maxsize=4)
def _datasets_statement(dialect: str):
    """The datasets of the page's appeals. On PostgreSQL the ids go as one array (`= ANY`): an expanding
    `IN` would render 25–100 parameters into a new statement text at every execution."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY

        wanted = _LINKS.c.appeal_id == any_(bindparam("ids", type_=ARRAY(Integer)))
    else:
        wanted = _LINKS.c.appeal_id.in_(bindparam("ids", expanding=True))
    return select(_LINKS.c.appeal_id, _LINKS.c.dataset).where(wanted).order_by(_LINKS.c.appeal_id, _LINKS.c.dataset)


def _ordered(keys):
    return [column.desc() if descending else column.asc() for column, descending in keys]


@lru_cache(maxsize=256)
def _page_statement(shape: tuple, statuses: tuple, sort: str):
    """The page's rows for one shape of filters, built once (values are bound at execution): the ids on
    the page are picked by walking indexes, then account and assignee joined for those rows only.

    Over every status, oldest or newest first, one walk of the (created_at, id) index; with one status, its
    index; with several, one ordered branch per status (each walking that status's (status, key) index)
    merged, instead of sorting every waiting appeal. With a dataset, the same on the dataset's rows.
    """
    keys = SORTS[sort]
    if shape[1]:
        # One dataset: walk its rows of appeal_datasets, which carry their appeal's status and sort keys, on
        # the (dataset, status, key) index of the sort; the appeals table is joined only for other filters.
        conditions = _conditions(shape, include_dataset=False)
        source = _LINKS.join(_APPEALS, _APPEALS.c.id == _LINKS.c.appeal_id) if conditions else _LINKS
        walk = [(_LINK_COPIES[column], descending) for column, descending in keys]
        status_column, conditions = _LINKS.c.appeal_status, [_LINKS.c.dataset == bindparam("dataset"), *conditions]
        one_walk = False
    else:
        source, walk, status_column, conditions = _APPEALS, keys, _APPEALS.c.status, _conditions(shape)
        one_walk = set(statuses) == set(APPEAL_STATUSES) and sort in ("oldest", "newest")
    if one_walk:
        ids = select(_APPEALS.c.id).where(*conditions)
    elif len(statuses) == 1:
        ids = select(walk[-1][0]).select_from(source).where(status_column == statuses[0], *conditions)
    else:
        ids = None
    if ids is not None:
        ids = (ids.order_by(*_ordered(walk)).limit(bindparam("limit", type_=Integer))
               .offset(bindparam("offset", type_=Integer)))
    else:
        branches = [
            select(select(*[column.label(f"k{i}") for i, (column, _d) in enumerate(walk)]).select_from(source)
                   .where(status_column == status, *conditions)
                   .order_by(*_ordered(walk)).limit(bindparam("branch_limit", type_=Integer)).subquery())
            for status in statuses
        ]
        merged = union_all(*branches).subquery()
        ids = (select(merged.c[f"k{len(walk) - 1}"])
               .order_by(*_ordered([(merged.c[f"k{i}"], d) for i, (_c, d) in enumerate(walk)]))
               .limit(bindparam("limit", type_=Integer)).offset(bindparam("offset", type_=Integer)))
    return (select(_APPEALS.c.id, _APPEALS.c.version, _APPEALS.c.status, _APPEALS.c.reason, _APPEALS.c.created_at,
                   _APPEALS.c.due_at, _APPEALS.c.footprint_size, _APPEALS.c.assigned_to_id,
                   _APPEALS.c.claim_touched_at, _ACCOUNTS.c.screen_name, _ACCOUNTS.c.user_id,
                   _STAFF.c.email)
            .join_from(_APPEALS, _ACCOUNTS, _ACCOUNTS.c.id == _APPEALS.c.account_id)
            .outerjoin(_STAFF, _STAFF.c.id == _APPEALS.c.assigned_to_id)
            .where(_APPEALS.c.id.in_(ids.scalar_subquery()))
            .order_by(*_ordered(keys)))


@lru_cache(maxsize=64)
def _mine_counts_statement(shape: tuple):
    """Per status: the caller's live claims matching the other filters, and how many of them are past due."""
    late = case((and_(queue_counts.one_of(_APPEALS.c.status, UNDECIDED_STATUSES), _APPEALS.c.due_at < bindparam("now")),
                 1), else_=0)
    return (select(_APPEALS.c.status, func.count(), func.sum(late))
            .where(*_conditions(shape)).group_by(_APPEALS.c.status))


def _conditions(shape: tuple, include_dataset: bool = True) -> list:
    """Every filter except the status (and except the dataset unless `include_dataset`), as SQL conditions
    on the appeals table with bound values (now, cutoff, reason, dataset, me, created_by)."""
    by_reason, by_dataset, assigned, by_age, overdue = shape
    by_dataset = by_dataset and include_dataset
    conditions = []
    if by_reason:
        conditions.append(_APPEALS.c.reason == bindparam("reason"))
    if by_dataset:
        # Served by the index on appeal_datasets (dataset, appeal_id).
        conditions.append(_APPEALS.c.id.in_(select(_LINKS.c.appeal_id).where(_LINKS.c.dataset == bindparam("dataset"))))
    if assigned == "me":
        conditions += [_APPEALS.c.assigned_to_id == bindparam("me"), _APPEALS.c.claim_touched_at >= bindparam("cutoff")]
    elif assigned == "unassigned":
        conditions.append(or_(_APPEALS.c.assigned_to_id.is_(None), _APPEALS.c.claim_touched_at < bindparam("cutoff")))
    if by_age:
        conditions.append(_APPEALS.c.created_at <= bindparam("created_by"))
    if overdue:
        conditions += [queue_counts.one_of(_APPEALS.c.status, UNDECIDED_STATUSES), _APPEALS.c.due_at < bindparam("now")]
    return conditions


def describe(appeal: QueueItem, page: QueuePage) -> dict:
    """A queue row as plain data (the API's item, the page's extra fields)."""
    live = appeal.assigned_to_id and appeal.claim_touched_at and appeal.claim_touched_at >= page.claim_cutoff
    return {
        "id": appeal.id,
        "version": appeal.version,
        "status": appeal.status,
        "reason": appeal.reason,
        "screen_name": appeal.screen_name,
        "user_id": appeal.user_id,
        "created_at": iso(appeal.created_at),
        "due_at": iso(appeal.due_at),
        "overdue": appeal.status in UNDECIDED_STATUSES and appeal.due_at < page.now,
        "footprint_size": appeal.footprint_size,
        "datasets": list(appeal.datasets),
        "assigned_to": appeal.assignee_email if live else None,
    }


def dashboard(principal, days: int = 90) -> dict:
    """Queue depth, median time to decision, approval rate, overdue count and corrections in flight."""
    policy.authorize(principal, "dashboard.view")
    now = utcnow()
    since = now - timedelta(days=days)
    depth = dict(db.session.execute(select(Appeal.status, func.count()).group_by(Appeal.status)).all())
    overdue = db.session.scalar(
        select(func.count()).select_from(Appeal)
        .where(Appeal.status.in_(UNDECIDED_STATUSES), Appeal.due_at < now)
    )
    decided = db.session.execute(
        select(Appeal.created_at, Appeal.decided_at, Appeal.status)
        .where(Appeal.decided_at.is_not(None), Appeal.decided_at >= since)
    ).all()
    hours = [(d - c).total_seconds() / 3600 for c, d, _s in decided]
    denied = sum(1 for *_x, s in decided if s == "denied")
    approved = len(decided) - denied
    corrections = dict(db.session.execute(select(Correction.status, func.count()).group_by(Correction.status)).all())
    failed = list(db.session.scalars(
        select(Correction).where(Correction.status == "failed").order_by(Correction.id.desc()).limit(50)
    ))
    running = list(db.session.scalars(
        select(CorrectionRun).where(CorrectionRun.status == "running").order_by(CorrectionRun.created_at)
    ))
    return {
        "days": days,
        "depth": {status: depth.get(status, 0) for status in APPEAL_STATUSES},
        "waiting": sum(depth.get(s, 0) for s in WAITING_STATUSES),
        "overdue": overdue,
        "decisions": len(decided),
        "median_hours_to_decision": round(statistics.median(hours), 1) if hours else None,
        "approval_rate": round(approved / len(decided), 3) if decided else None,
        "corrections": {s: corrections.get(s, 0) for s in ("queued", "running", "done", "failed")},
        "failed_corrections": failed,
        "running_runs": running,
        "can_retry": policy.can(principal, "correction.retry"),
    }


def retry_correction(principal, correction_id: int, actor) -> Correction:
    """An admin retries a failed correction (the corrections service does the work and authorizes too)."""
    policy.authorize(principal, "correction.retry")
    return corrections.retry(correction_id, actor)
