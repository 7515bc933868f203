"""The review queue: filters, sorting, pagination, counts per status, and the dashboard's metrics.

A queue page costs a fixed number of queries however long the queue is: one for the
rows (account and assignee joined), one for their datasets, and one for the counts per
status and the overdue count: read from the maintained counts (services/queue_counts.py)
when only status, reason and overdue filter the queue, a GROUP BY over the appeals otherwise.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, case, func, or_, select, union_all

from appeals import db, runtime
from appeals import status as table
from appeals.db import utcnow
from appeals.models import APPEAL_STATUSES, OPEN_STATUSES, REASONS, Appeal, AppealDataset, Correction, CorrectionRun
from appeals.requests import iso, number_problem
from appeals.services import corrections, policy, queue_counts
from appeals.services.errors import Invalid

# The queue's default view: what staff still have to act on, exactly; an appeal waiting on its owner's
# answer is not waiting for staff (issue 15).
WAITING_STATUSES = table.WAITING_FOR_STAFF
# Undecided appeals run against the SLA clock; decided ones have stopped it.
UNDECIDED_STATUSES = table.UNDECIDED
STATUS_GROUPS = {"waiting": WAITING_STATUSES, "open": OPEN_STATUSES, "all": APPEAL_STATUSES}
SORTS = {
    "oldest": (Appeal.created_at.asc(), Appeal.id.asc()),
    "newest": (Appeal.created_at.desc(), Appeal.id.desc()),
    "due": (Appeal.due_at.asc(), Appeal.id.asc()),
    "footprint": (Appeal.footprint_size.desc(), Appeal.created_at.asc(), Appeal.id.asc()),
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


def list_queue(principal, filters: QueueFilters) -> QueuePage:
    """One page of the queue for a staff member; reads only (the worker's sweep expires claims and requests).

    An idle claim shows as free here from the moment it lapses, before the sweep records it.
    """
    policy.authorize(principal, "queue.view")
    now = utcnow()
    cutoff = now - timedelta(minutes=runtime.settings().claim_idle_minutes)
    overdue_cond = and_(Appeal.status.in_(UNDECIDED_STATUSES), Appeal.due_at < now)
    conditions = _conditions(principal, filters, now, cutoff, overdue_cond)
    statuses = STATUS_GROUPS.get(filters.status, (filters.status,))

    counts = {status: 0 for status in APPEAL_STATUSES}
    late_statuses = [s for s in statuses if s in UNDECIDED_STATUSES]
    if not (filters.dataset or filters.assigned == "me"):
        # Status, reason, overdue, unassigned and minimum-age filters: the maintained counts answer
        # (services/queue_counts.py), less the few appeals under a live claim for "unassigned".
        every, late = queue_counts.figures(
            now, filters.reason, cutoff if filters.assigned == "unassigned" else None,
            None if filters.min_age_days is None else now - timedelta(days=filters.min_age_days))
        counts.update(late if filters.overdue else every)
        total = sum(counts[s] for s in statuses)
        overdue = sum(late.get(s, 0) for s in late_statuses)
    else:
        # One pass over the matching appeals counts them per status and, per status, those past due.
        late_per_status = {}
        for status, n, late_n in db.session.execute(
                select(Appeal.status, func.count(), func.sum(case((Appeal.due_at < now, 1), else_=0)))
                .where(*conditions).group_by(Appeal.status)):
            counts[status], late_per_status[status] = n, int(late_n or 0)
        total = sum(counts[s] for s in statuses)
        overdue = sum(late_per_status.get(s, 0) for s in late_statuses)

    items = []
    if total:
        # Pick the page's ids on the appeals table alone, then join accounts and assignees for 25 rows only.
        items = list(db.session.scalars(
            select(Appeal).where(Appeal.id.in_(_page_ids(statuses, conditions, filters)))
            .order_by(*SORTS[filters.sort])
        ))
    return QueuePage(filters, items, total, counts, overdue, now, cutoff)


def _page_ids(statuses, conditions, filters: QueueFilters):
    """The ids on the requested page, as a subquery.

    With several statuses, one ordered branch per status (each walking the (status, created_at)
    or (status, due_at) index) is merged, instead of sorting every waiting appeal.
    """
    order = SORTS[filters.sort]
    offset = (filters.page - 1) * filters.per_page
    if len(statuses) == 1 or filters.sort == "footprint":
        return (select(Appeal.id).where(Appeal.status.in_(statuses), *conditions)
                .order_by(*order).limit(filters.per_page).offset(offset).scalar_subquery())
    key = Appeal.due_at if filters.sort == "due" else Appeal.created_at
    branches = [
        select(select(Appeal.id.label("id"), key.label("key")).where(Appeal.status == status, *conditions)
               .order_by(*order).limit(offset + filters.per_page).subquery())
        for status in statuses
    ]
    merged = union_all(*branches).subquery()
    direction = (merged.c.key.desc(), merged.c.id.desc()) if filters.sort == "newest" else (merged.c.key, merged.c.id)
    return select(merged.c.id).order_by(*direction).limit(filters.per_page).offset(offset).scalar_subquery()


def _conditions(principal, filters: QueueFilters, now, cutoff, overdue_cond) -> list:
    """Every filter except the status, as SQL conditions."""
    conditions = []
    if filters.reason:
        conditions.append(Appeal.reason == filters.reason)
    if filters.dataset:
        # Served by the index on appeal_datasets.dataset.
        conditions.append(Appeal.id.in_(select(AppealDataset.appeal_id).where(AppealDataset.dataset == filters.dataset)))
    if filters.assigned == "me":
        conditions += [Appeal.assigned_to_id == principal.id, Appeal.claim_touched_at >= cutoff]
    elif filters.assigned == "unassigned":
        conditions.append(or_(Appeal.assigned_to_id.is_(None), Appeal.claim_touched_at < cutoff))
    if filters.min_age_days is not None:
        conditions.append(Appeal.created_at <= now - timedelta(days=filters.min_age_days))
    if filters.overdue:
        conditions.append(overdue_cond)
    return conditions


def describe(appeal: Appeal, page: QueuePage) -> dict:
    """A queue row as plain data (the API's item, the page's extra fields)."""
    holder = appeal.assigned_to if appeal.assigned_to_id and appeal.claim_touched_at \
        and appeal.claim_touched_at >= page.claim_cutoff else None
    return {
        "id": appeal.id,
        "version": appeal.version,
        "status": appeal.status,
        "reason": appeal.reason,
        "screen_name": appeal.account.screen_name,
        "user_id": appeal.account.user_id,
        "created_at": iso(appeal.created_at),
        "due_at": iso(appeal.due_at),
        "overdue": appeal.status in UNDECIDED_STATUSES and appeal.due_at < page.now,
        "footprint_size": appeal.footprint_size,
        "datasets": [d.dataset for d in appeal.datasets],
        "assigned_to": holder.email if holder else None,
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
